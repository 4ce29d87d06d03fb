// The CUDA op profiler: ops on the compute stream are timed with events and counted per shape,
// and a product that takes many times longer than a tiny add shows up as the larger time.
// Skips without a GPU.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaOpProfiler, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cstdlib>
#include <string>
#include <vector>

#include "backend/backend_factory.h"
#include "backend/cuda/cuda_backend.h"
#include "support/cuda_test_support.h"

namespace ebb {
namespace {

// The "ms" column of the table row of `op` with `operands`.
double row_ms(const std::string& table, const std::string& op, const std::string& operands) {
  const std::string head = " | " + op + " | " + operands + " | ";
  const size_t at = table.find(head);
  if (at == std::string::npos) return -1;
  const size_t calls_end = table.find(" | ", at + head.size());
  return std::strtod(table.c_str() + calls_end + 3, nullptr);
}

TEST(CudaOpProfiler, TimesOpsOnTheDevice) {
  std::string why;
  if (!test::device_present(why)) GTEST_SKIP() << why;
  CudaBackend gpu;
  const int64_t n = 4096;
  const Tensor a = gpu.from_floats({n, n}, std::vector<float>(size_t(n * n), 0.01f));
  const Tensor small = gpu.from_floats({8}, std::vector<float>(8, 1.0f));
  const std::unique_ptr<OpProfiler> profiler = make_op_profiler(gpu);
  gpu.set_op_observer(profiler.get());
  for (int i = 0; i < 4; ++i) gpu.linear(a, a, Tensor{});
  gpu.add(small, small);
  gpu.set_op_observer(nullptr);
  profiler->collect();
  const std::string table = profiler->table("gpu", 1);
  const double linear = row_ms(table, "linear", "x F16[4096, 4096], w F16[4096, 4096]");
  const double add = row_ms(table, "add", "a F16[8], b F16[8]");
  EXPECT_NE(table.find("gpu: 5 ops"), std::string::npos) << table;
  EXPECT_GT(add, 0.0) << table;
  // 4 products of 137 GFLOP each against one 8-element add.
  EXPECT_GT(linear, 10 * add) << table;
}

}  // namespace
}  // namespace ebb

#endif
