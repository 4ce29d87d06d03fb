#pragma once
// A per-device caching allocator that accounts for every byte. Blocks come in size classes
// (at most 12.5% rounding); a freed block stays cached for the next request of its class, so
// a second denoising step that repeats the first one's allocations asks the device for
// nothing. Bytes are counted per tag (current and peak), and an allocation that would push
// the bytes held from the device over the budget fails with an error naming the op, the tag,
// the size and the budget, after the cache was emptied as far as that helps.
//
// Thread-safe: a weight store's I/O thread may allocate while the compute thread runs ops.
// Storages handed out keep the arena's state alive, so they may outlive the Arena object.
#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "tensor/device.h"
#include "tensor/storage.h"
#include "weights/ledger.h"

namespace ebb {

// The ledger's tags (weights, activations, scratch, staging), so arena figures and ledger
// entries count the same things.
inline constexpr int kMemoryTagCount = static_cast<int>(MemoryTag::Staging) + 1;

// Where an arena gets its memory: host RAM, device RAM, pinned host RAM.
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  virtual Device device() const = 0;
  // `bytes` is a multiple of 64; the result is 64-byte aligned, or null when the device has
  // no memory left.
  virtual std::byte* allocate(uint64_t bytes) = 0;
  virtual void release(std::byte* data, uint64_t bytes) = 0;
  // Gives memory a device keeps after release() back to the system.
  virtual void trim() {}
};

// Host RAM; large blocks are mapped directly so releasing them returns them to the system.
std::unique_ptr<DeviceMemory> make_host_memory();

struct ArenaStats {
  std::array<uint64_t, kMemoryTagCount> in_use{};  // bytes in live blocks, per tag
  std::array<uint64_t, kMemoryTagCount> peak{};    // highest in_use per tag
  uint64_t in_use_total = 0;
  uint64_t peak_total = 0;         // highest in_use_total (not the sum of the per-tag peaks)
  uint64_t window_peak_total = 0;  // highest in_use_total since restart_window()
  uint64_t reserved = 0;           // held from the device: live blocks plus cached ones
  uint64_t peak_reserved = 0;
  uint64_t device_allocations = 0;  // requests the cache could not serve
  uint64_t cache_hits = 0;
};

class Arena {
 public:
  static constexpr uint64_t kUnlimited = UINT64_MAX;

  explicit Arena(std::unique_ptr<DeviceMemory> memory, uint64_t budget = kUnlimited);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  Device device() const;
  // A writable block of at least `bytes` bytes, 64-byte aligned, returned to the cache when
  // the last tensor viewing it goes away. `op` names the caller in an out-of-memory error.
  std::shared_ptr<Storage> allocate(uint64_t bytes, MemoryTag tag, std::string_view op);

  uint64_t budget() const;
  // Caps the bytes held from the device (reserved); cached blocks above it are released.
  void set_budget(uint64_t bytes);
  ArenaStats stats() const;
  // Peaks restart from the current values, e.g. to measure one step.
  void reset_peaks();
  // window_peak_total restarts from the current use, leaving the other peaks (which reports sum
  // up) as they are: for measuring one step within a run.
  void restart_window();
  // Hands every cached block back to the device, and the device's kept memory to the system.
  void release_cached();

  // The class a request of `bytes` is rounded up to.
  static uint64_t block_size(uint64_t bytes);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ebb
