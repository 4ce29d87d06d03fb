#include "backend/arena.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "core/error.h"

namespace ebb {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr uint64_t kMiB = uint64_t(1) << 20;

uint64_t in_use(const Arena& a, MemoryTag t) {
  return a.stats().in_use[static_cast<int>(t)];
}

TEST(Arena, BlockSizesRoundUpByAtMostAnEighth) {
  EXPECT_EQ(Arena::block_size(0), 64u);
  EXPECT_EQ(Arena::block_size(64), 64u);
  EXPECT_EQ(Arena::block_size(65), 128u);
  EXPECT_EQ(Arena::block_size(1000), 1024u);
  EXPECT_EQ(Arena::block_size(4097), 4608u);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t bytes = rng() >> (4 + rng() % 60);
    const uint64_t size = Arena::block_size(bytes);
    EXPECT_GE(size, bytes);
    EXPECT_EQ(size % 64, 0u);
    if (bytes > 512) {
      EXPECT_LE(size - bytes, bytes / 8) << bytes;
    }
  }
}

TEST(Arena, CountsBytesPerTagAndPeaks) {
  Arena arena(make_host_memory());
  auto w = arena.allocate(1000, MemoryTag::Weights, "test");
  auto a = arena.allocate(4096, MemoryTag::Activations, "test");
  {
    auto s = arena.allocate(2 * kMiB, MemoryTag::Scratch, "test");
    EXPECT_EQ(s->bytes(), 2 * kMiB);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(s->data()) % 64, 0u);
    EXPECT_EQ(in_use(arena, MemoryTag::Scratch), 2 * kMiB);
    EXPECT_EQ(arena.stats().in_use_total, 1024 + 4096 + 2 * kMiB);
  }
  const ArenaStats st = arena.stats();
  EXPECT_EQ(st.in_use[0], 1024u);
  EXPECT_EQ(st.in_use[1], 4096u);
  EXPECT_EQ(st.in_use[2], 0u);
  EXPECT_EQ(st.peak[2], 2 * kMiB);
  EXPECT_EQ(st.peak_total, 1024 + 4096 + 2 * kMiB);
  EXPECT_EQ(st.reserved, 1024 + 4096 + 2 * kMiB);  // the scratch block is cached
  EXPECT_EQ(st.device_allocations, 3u);
  EXPECT_EQ(st.window_peak_total, st.peak_total);
  arena.restart_window();  // the window restarts; the peaks reports use stay
  EXPECT_EQ(arena.stats().window_peak_total, 1024u + 4096u);
  EXPECT_EQ(arena.stats().peak_total, 1024 + 4096 + 2 * kMiB);
  { const auto again = arena.allocate(kMiB, MemoryTag::Scratch, "t"); }
  EXPECT_EQ(arena.stats().window_peak_total, 1024 + 4096 + kMiB);
  arena.reset_peaks();
  EXPECT_EQ(arena.stats().peak_total, 1024u + 4096u);
  arena.release_cached();
  EXPECT_EQ(arena.stats().reserved, 1024u + 4096u);
}

TEST(Arena, RepeatedStepsAllocateNothingNew) {
  Arena arena(make_host_memory());
  // A step: a mix of sizes, some freed early, some held to the end, like a UNet block sequence.
  auto step = [&] {
    std::vector<std::shared_ptr<Storage>> held;
    for (int block = 0; block < 6; ++block) {
      auto act = arena.allocate(uint64_t(320 + 64 * block) * 4096 * 4, MemoryTag::Activations, "s");
      auto scratch = arena.allocate(uint64_t(8 + block) << 20, MemoryTag::Scratch, "s");
      if (block % 2 == 0) held.push_back(act);
    }
  };
  step();
  const ArenaStats first = arena.stats();
  for (int i = 0; i < 3; ++i) step();
  const ArenaStats later = arena.stats();
  EXPECT_EQ(later.device_allocations, first.device_allocations);
  EXPECT_EQ(later.peak_reserved, first.peak_reserved);
  EXPECT_GT(later.cache_hits, first.cache_hits);
  EXPECT_EQ(later.in_use_total, 0u);
}

TEST(Arena, OutOfBudgetNamesOpTagSizeAndBudget) {
  Arena arena(make_host_memory(), kMiB);
  auto a = arena.allocate(600 << 10, MemoryTag::Activations, "conv2d");
  EXPECT_THAT(
      [&] { arena.allocate(600 << 10, MemoryTag::Scratch, "linear"); },
      ThrowsMessage<Error>(AllOf(HasSubstr("out of memory on cpu"), HasSubstr("linear"),
                                 HasSubstr("600.0 KiB of scratch"), HasSubstr("budget is 1.0 MiB"),
                                 HasSubstr("activations 640.0 KiB"))));
}

TEST(Arena, CachedBlocksMakeRoomUnderTheBudget) {
  Arena arena(make_host_memory(), kMiB);
  arena.allocate(600 << 10, MemoryTag::Activations, "a");  // freed at once, stays cached
  EXPECT_EQ(arena.stats().reserved, 640u << 10);
  auto b = arena.allocate(700 << 10, MemoryTag::Activations, "b");
  EXPECT_EQ(arena.stats().reserved, 704u << 10);
  arena.set_budget(512 << 10);
  b.reset();
  arena.set_budget(512 << 10);
  EXPECT_EQ(arena.stats().reserved, 0u);
}

class RefusingMemory final : public DeviceMemory {
 public:
  Device device() const override { return Device::cuda(1); }
  std::byte* allocate(uint64_t) override { return nullptr; }
  void release(std::byte*, uint64_t) override {}
};

TEST(Arena, DeviceRefusalIsAnError) {
  Arena arena(std::make_unique<RefusingMemory>());
  EXPECT_THAT([&] { arena.allocate(100, MemoryTag::Weights, "upload"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("cuda1"), HasSubstr("refused 128 B"),
                                         HasSubstr("upload"), HasSubstr("weights"))));
}

TEST(Arena, AbsurdSizesFailCleanly) {
  Arena arena(make_host_memory());
  EXPECT_THAT([&] { arena.allocate(uint64_t(1) << 63, MemoryTag::Activations, "huge"); },
              ThrowsMessage<Error>(HasSubstr("out of memory on cpu")));
  EXPECT_EQ(arena.stats().reserved, 0u);
}

TEST(Arena, BlocksMayOutliveTheArena) {
  std::shared_ptr<Storage> survivor;
  {
    Arena arena(make_host_memory());
    survivor = arena.allocate(3 * kMiB, MemoryTag::Activations, "test");
  }
  survivor->data()[0] = std::byte{1};
  survivor.reset();  // returned to the arena's state, freed with it (ASan checks)
}

TEST(Arena, ConcurrentAllocationsBalance) {
  Arena arena(make_host_memory());
  auto worker = [&](int seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < 2000; ++i) {
      auto s = arena.allocate(64 + rng() % 100000, MemoryTag::Scratch, "worker");
      s->data()[0] = std::byte{2};
    }
  };
  std::thread t1(worker, 1), t2(worker, 2);
  t1.join();
  t2.join();
  EXPECT_EQ(arena.stats().in_use_total, 0u);
}

}  // namespace
}  // namespace ebb
