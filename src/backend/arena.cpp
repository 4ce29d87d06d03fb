#include "backend/arena.h"

#include <sys/mman.h>

#include <bit>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core/error.h"

namespace ebb {
namespace {

constexpr uint64_t kMinBlock = 64;
// Larger host blocks are mapped, so freeing them gives the pages back instead of leaving them
// in the C heap where no accounting sees them.
constexpr uint64_t kMapThreshold = uint64_t(1) << 20;

class HostMemory final : public DeviceMemory {
 public:
  Device device() const override { return Device::cpu(); }
  std::byte* allocate(uint64_t bytes) override {
    if (bytes >= kMapThreshold) {
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      return p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
    }
    return static_cast<std::byte*>(std::aligned_alloc(kMinBlock, bytes));
  }
  void release(std::byte* data, uint64_t bytes) override {
    if (bytes >= kMapThreshold)
      munmap(data, bytes);
    else
      std::free(data);
  }
};

std::string human_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, kUnits[unit]);
}

}  // namespace

std::unique_ptr<DeviceMemory> make_host_memory() {
  return std::make_unique<HostMemory>();
}

struct Arena::State {
  std::unique_ptr<DeviceMemory> memory;
  uint64_t budget;
  mutable std::mutex mutex;
  ArenaStats stats;
  std::map<uint64_t, std::vector<std::byte*>> cache;  // free blocks by size

  ~State() { release_all_cached(); }

  void release_all_cached() {
    for (auto& [size, blocks] : cache) {
      for (std::byte* b : blocks) memory->release(b, size);
      stats.reserved -= size * blocks.size();
    }
    cache.clear();
  }

  // Releases cached blocks, largest first, until `need` more bytes fit in the budget.
  void release_cached_until_fits(uint64_t need) {
    while (!cache.empty() && (stats.reserved > budget || budget - stats.reserved < need)) {
      auto it = std::prev(cache.end());
      memory->release(it->second.back(), it->first);
      stats.reserved -= it->first;
      it->second.pop_back();
      if (it->second.empty()) cache.erase(it);
    }
  }

  std::string usage() const {
    std::string by_tag;
    for (int t = 0; t < kMemoryTagCount; ++t)
      by_tag += fmt::format("{}{} {}", t ? ", " : "", memory_tag_name(MemoryTag(t)),
                            human_bytes(stats.in_use[t]));
    return fmt::format("{} in use ({}), {} cached", human_bytes(stats.in_use_total), by_tag,
                       human_bytes(stats.reserved - stats.in_use_total));
  }

  void take(uint64_t size, MemoryTag tag) {
    const int t = static_cast<int>(tag);
    stats.in_use[t] += size;
    stats.in_use_total += size;
    stats.peak[t] = std::max(stats.peak[t], stats.in_use[t]);
    stats.peak_total = std::max(stats.peak_total, stats.in_use_total);
    stats.window_peak_total = std::max(stats.window_peak_total, stats.in_use_total);
  }

  void give_back(std::byte* data, uint64_t size, MemoryTag tag) {
    std::lock_guard lock(mutex);
    stats.in_use[static_cast<int>(tag)] -= size;
    stats.in_use_total -= size;
    cache[size].push_back(data);
  }
};

uint64_t Arena::block_size(uint64_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;
  if (bytes > (uint64_t(1) << 62)) return bytes;  // no device has this; allocate() refuses it
  // Eight classes per power of two.
  const int log2 = 63 - std::countl_zero(bytes);
  const uint64_t step = std::max<uint64_t>(kMinBlock, uint64_t(1) << std::max(0, log2 - 3));
  return (bytes + step - 1) / step * step;
}

Arena::Arena(std::unique_ptr<DeviceMemory> memory, uint64_t budget)
    : state_(std::make_shared<State>()) {
  state_->memory = std::move(memory);
  state_->budget = budget;
}

Arena::~Arena() {
  release_cached();
}

Device Arena::device() const {
  return state_->memory->device();
}

std::shared_ptr<Storage> Arena::allocate(uint64_t bytes, MemoryTag tag, std::string_view op) {
  const uint64_t size = block_size(bytes);
  State& s = *state_;
  std::byte* data = nullptr;
  {
    std::lock_guard lock(s.mutex);
    auto it = s.cache.find(size);
    if (it != s.cache.end()) {
      data = it->second.back();
      it->second.pop_back();
      if (it->second.empty()) s.cache.erase(it);
      ++s.stats.cache_hits;
    } else {
      s.release_cached_until_fits(size);
      if (s.stats.reserved > s.budget || s.budget - s.stats.reserved < size)
        fail("out of memory on {}: {} needs {} of {} but the budget is {} with {}", device().name(),
             op, human_bytes(bytes), memory_tag_name(tag), human_bytes(s.budget), s.usage());
      data = s.memory->allocate(size);
      if (!data) {
        // What a device keeps after release (a stream-ordered pool) goes back to it too.
        s.release_all_cached();
        s.memory->trim();
        data = s.memory->allocate(size);
      }
      if (!data)
        fail("out of memory on {}: the device refused {} for {} ({}) with {}", device().name(),
             human_bytes(size), op, memory_tag_name(tag), s.usage());
      s.stats.reserved += size;
      s.stats.peak_reserved = std::max(s.stats.peak_reserved, s.stats.reserved);
      ++s.stats.device_allocations;
    }
    s.take(size, tag);
  }
  return std::make_shared<Storage>(data, size, device(), true, [state = state_, data, size, tag] {
    state->give_back(data, size, tag);
  });
}

uint64_t Arena::budget() const {
  std::lock_guard lock(state_->mutex);
  return state_->budget;
}

void Arena::set_budget(uint64_t bytes) {
  std::lock_guard lock(state_->mutex);
  state_->budget = bytes;
  state_->release_cached_until_fits(0);
}

ArenaStats Arena::stats() const {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

void Arena::reset_peaks() {
  std::lock_guard lock(state_->mutex);
  ArenaStats& st = state_->stats;
  st.peak = st.in_use;
  st.peak_total = st.in_use_total;
  st.peak_reserved = st.reserved;
  st.window_peak_total = st.in_use_total;
}

void Arena::restart_window() {
  std::lock_guard lock(state_->mutex);
  state_->stats.window_peak_total = state_->stats.in_use_total;
}

void Arena::release_cached() {
  std::lock_guard lock(state_->mutex);
  state_->release_all_cached();
  state_->memory->trim();
}

}  // namespace ebb
