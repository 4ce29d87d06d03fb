#pragma once
// The memory flags of `ebb generate`, with stable-diffusion.cpp's names (--eager-load,
// --free-params-immediately, --params-backend, --sequential-load, --lazy-load, --mmap,
// --offload-to-cpu, --stream-layers, --layer-prefetch-depth, --max-vram, --auto-fit,
// SD_MMAP_FLAGS) and Ebb's own (--page-cache, --direct-io, --max-ram, --memory,
// --memory-report, --simulated-device), turned into the weight store's MemoryPlan. Each plan
// is a setting of the store; contradictory flags are an ebb::Error that explains the conflict.
#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "weights/memory_plan.h"

namespace ebb {

struct MemoryFlags {
  bool eager_load = false;
  bool free_params_immediately = false;
  std::string params_backend;  // "disk", "cpu", or "clip=disk,diffusion=cpu,..."
  bool sequential_load = false;
  bool lazy_load = false;
  bool mmap = false;       // --mmap: asked for explicitly (it is the default)
  bool no_mmap = false;    // --no-mmap
  std::string page_cache;  // --page-cache, else SD_MMAP_FLAGS
  bool direct_io = false;
  bool offload_to_cpu = false;
  bool stream_layers = false;
  std::optional<int> layer_prefetch_depth;
  std::string max_vram, max_ram;
  bool auto_fit = false;
  std::string memory;  // --memory auto
  std::string memory_report;
  bool simulated_device = false;
};

void add_memory_flags(CLI::App& cmd, MemoryFlags& flags);

// What the flags ask of the host side of the store, before any device or budget is known.
// `sd_mmap_flags` is the SD_MMAP_FLAGS environment value (nullptr when unset); `notes` receives
// one line per implied setting (e.g. --lazy-load implying dontneed) for the user.
MemoryPlan memory_plan_from_flags(const MemoryFlags& flags, const char* sd_mmap_flags,
                                  std::vector<std::string>& notes);

// --params-backend: "disk" / "cpu" for every component, or COMPONENT=disk|cpu entries where a
// component is clip, diffusion, vae or a component name (clip_l, ...).
std::map<std::string, Release, std::less<>> parse_params_backend(std::string_view value);

}  // namespace ebb
