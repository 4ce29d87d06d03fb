#pragma once
// The memory-budget and placement flags, with stable-diffusion.cpp's semantics where it has
// the flag: --max-vram, --max-ram, --backend, --device, --clip-on-cpu, --vae-on-cpu. A device is
// "cpu" or "cudaN" ("cuda:N" and "cuda" = "cuda0" are accepted and normalised). Every bad value
// is an ebb::Error naming the flag and the bad part, e.g.
//   --max-vram: "cuda0=abc": "abc" is not a number of GiB
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ebb {

// ---- --max-vram GIB | DEVICE=GIB,... ----
// GiB as a decimal number: 0 means no budget, a negative value means "the device's free
// memory minus that many GiB". A bare number applies to every device not named on its own.
struct VramBudget {
  std::optional<double> all_devices_gib;
  std::map<std::string, double> device_gib;  // "cuda1" -> GiB
};

// cuda_device_count: devices named in the value must exist.
VramBudget parse_max_vram(std::string_view value, int cuda_device_count);

// The budget in bytes for one device given its free memory now; 0 means no budget. A negative
// budget that leaves nothing of the free memory is an ebb::Error.
uint64_t resolve_budget(const VramBudget& budget, const std::string& device, uint64_t free_bytes);

// ---- --max-ram GIB ----
// One value in GiB, read like a --max-vram value but against the system memory limit.
double parse_max_ram(std::string_view value);

// Where the host memory limit is read from; tests point these elsewhere.
struct MemoryLimitFiles {
  std::string cgroup_v2_max = "/sys/fs/cgroup/memory.max";
  std::string cgroup_v1_limit = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
  std::string meminfo = "/proc/meminfo";
};

// The smaller of MemTotal and the cgroup memory limit (v2, else v1; "max" or a v1 "unlimited"
// value larger than MemTotal counts as none). A missing cgroup file means no cgroup limit; a
// malformed one, or a meminfo without MemTotal, is an ebb::Error naming the file.
uint64_t system_memory_limit(const MemoryLimitFiles& files = {});

// The budget when --max-ram is not given: the system memory limit minus a margin for the OS,
// the page cache of the weights and everything else running, of 10% of the limit or 1 GiB,
// whichever is larger, but never more than half the limit.
uint64_t default_max_ram(const MemoryLimitFiles& files = {});

// --max-ram in bytes (0: no budget): the default without the flag, a negative value counted
// down from the system memory limit (an ebb::Error when that leaves nothing).
uint64_t resolve_max_ram(std::optional<double> gib, const MemoryLimitFiles& files = {});

// ---- --backend, --device, --clip-on-cpu, --vae-on-cpu ----
enum class PlacedComponent { clip_l, clip_h, clip_g, t5xxl, diffusion, vae };
inline constexpr int kPlacedComponentCount = 6;
std::string_view placed_component_name(PlacedComponent component);  // "clip_l", ..., "vae"

struct Placement {
  std::array<std::string, kPlacedComponentCount> device;  // "cpu" or "cudaN"
  const std::string& of(PlacedComponent component) const {
    return device[static_cast<size_t>(component)];
  }
};

struct PlacementFlags {
  std::string backend;  // --backend: a device, and/or COMPONENT=DEVICE entries; "" if absent
  std::string device;   // --device: a device; "" if absent
  bool clip_on_cpu = false;
  bool vae_on_cpu = false;
};

// Where each component runs. The most specific setting wins:
//   1. the component's own key in --backend (clip_l=, clip_h=, clip_g=, t5xxl=, diffusion=,
//      vae=);
//   2. for the text encoders, the group key clip= in --backend, which --clip-on-cpu spells as
//      clip=cpu; for the VAE, --vae-on-cpu (vae=cpu);
//   3. a bare device in --backend, or --device;
//   4. cuda0 when there is a CUDA device, else cpu.
// Giving one setting twice is an ebb::Error: a key repeated in --backend, a bare --backend
// device together with --device, or a shorthand contradicting the --backend key it spells
// (--clip-on-cpu with clip=cuda0); a shorthand repeating it (clip=cpu) is accepted.
Placement parse_placement(const PlacementFlags& flags, int cuda_device_count);

}  // namespace ebb
