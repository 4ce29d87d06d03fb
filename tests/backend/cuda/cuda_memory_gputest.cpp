// The device arena's memory on the GPU is stream-ordered: under a budget full to the last byte,
// releasing cached blocks to make room for another size class neither waits for the compute
// queued before it nor, once the first steps filled the pool, asks the driver for memory.
// Skips without a GPU.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaMemory, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cstdint>
#include <memory>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_memory.h"
#include "backend/cuda/cuda_transfer.h"
#include "support/cuda_test_support.h"

namespace ebb {
namespace {

constexpr uint64_t kMiB = uint64_t(1) << 20;

class CudaMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!test::device_present(why)) GTEST_SKIP() << why;
  }
};

TEST_F(CudaMemoryTest, EvictingUnderAFullBudgetDoesNotWaitForTheDevice) {
  CudaBackend gpu;
  CudaTransfer transfer(gpu);
  Arena& arena = gpu.arena();
  (void)arena.allocate(64 * kMiB, MemoryTag::Activations, "cached");
  {
    // Tens of milliseconds of products; their operands go back to the cache at once.
    const Tensor x = gpu.empty({4096, 4096});
    const Tensor w = gpu.empty({4096, 4096});
    for (int i = 0; i < 200; ++i) (void)gpu.linear(x, w, Tensor{});
  }
  const std::shared_ptr<TransferEvent> computed = transfer.compute_fence();
  arena.set_budget(arena.stats().reserved);
  const uint64_t misses = arena.stats().device_allocations;
  // No cached block has this size class: cached ones are released to make room.
  const auto other = arena.allocate(80 * kMiB, MemoryTag::Activations, "other");
  EXPECT_EQ(arena.stats().device_allocations, misses + 1);
  EXPECT_LE(arena.stats().reserved, arena.budget());
  EXPECT_FALSE(computed->done());  // cudaFree would have waited for the products
  gpu.synchronize();
}

TEST_F(CudaMemoryTest, SteadyStepsTakeNothingFromTheDriver) {
  auto owned = std::make_unique<CudaMemory>(0);
  CudaMemory& memory = *owned;
  // Room for one block of either class at a time: every step releases the other class's block.
  Arena arena(std::move(owned), 64 * kMiB);
  const auto step = [&] {
    (void)arena.allocate(48 * kMiB, MemoryTag::Activations, "a");
    (void)arena.allocate(40 * kMiB, MemoryTag::Activations, "b");
  };
  step();
  step();
  const uint64_t reserved = memory.reserved();
  const uint64_t misses = arena.stats().device_allocations;
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(arena.stats().device_allocations, misses + 10);  // the arena's cache misses...
  EXPECT_EQ(memory.reserved(), reserved);                    // ...the pool serves them
  arena.release_cached();
  EXPECT_EQ(memory.reserved(), 0u);
}

}  // namespace
}  // namespace ebb

#endif
