// The op profiler's bookkeeping on the CPU backend: every outermost op is counted under its
// name and operand shapes, ops inside ops are not counted again, counts and times are per run,
// and a backend without an observer reports nothing.
#include "backend/op_profiler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace ebb {
namespace {

// The table row of `op` with `operands` ("| 1 | linear | x F32[2, 8], w F32[4, 8] | 3 | ...").
std::string row(const std::string& table, const std::string& op, const std::string& operands) {
  const std::string head = " | " + op + " | " + operands + " | ";
  const size_t at = table.find(head);
  if (at == std::string::npos) return {};
  return table.substr(at, table.find('\n', at) - at);
}

TEST(OpProfiler, CountsOutermostOpsPerRunByShape) {
  CpuBackend backend(1);
  HostOpProfiler profiler;
  const Tensor x = backend.from_floats({2, 8}, std::vector<float>(16, 0.5f));
  const Tensor w = backend.from_floats({4, 8}, std::vector<float>(32, 0.25f));
  backend.set_op_observer(&profiler);
  for (int run = 0; run < 2; ++run) {
    for (int i = 0; i < 3; ++i) backend.linear(x, w, Tensor{});
    backend.add(x, x);
    // Reads its operand back through contiguous/read, which are not counted again.
    EXPECT_TRUE(backend.all_finite(x.narrow(1, 0, 4)));
  }
  backend.set_op_observer(nullptr);
  backend.add(x, x);  // not observed
  profiler.collect();
  const std::string table = profiler.table("test", 2);
  EXPECT_NE(table.find("test: 5 ops"), std::string::npos) << table;
  EXPECT_NE(row(table, "linear", "x F32[2, 8], w F32[4, 8]").find("| 3 |"), std::string::npos)
      << table;
  EXPECT_NE(row(table, "add", "a F32[2, 8], b F32[2, 8]").find("| 1 |"), std::string::npos)
      << table;
  EXPECT_FALSE(row(table, "all_finite", "x F32[2, 4]").empty()) << table;
  EXPECT_EQ(table.find("| read |"), std::string::npos) << table;
  EXPECT_EQ(table.find("| contiguous |"), std::string::npos) << table;
  // By op, the shares add up to the whole.
  EXPECT_NE(row(table, "linear", "").find("| 3 |"), std::string::npos) << table;

  profiler.clear();
  EXPECT_NE(profiler.table("empty", 1).find("empty: 0 ops"), std::string::npos);
}

TEST(OpProfiler, IdleTimeGoesToTheOpThatStartedLate) {
  CpuBackend backend(1);
  HostOpProfiler profiler;
  const Tensor x = backend.from_floats({4}, std::vector<float>(4, 1.0f));
  backend.set_op_observer(&profiler);
  backend.silu(x);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  backend.add(x, x);
  backend.set_op_observer(nullptr);
  profiler.collect();
  const std::string table = profiler.table("idle", 1);
  const size_t idle = table.find("Device idle before ops");
  ASSERT_NE(idle, std::string::npos) << table;
  const std::string waits = table.substr(idle);
  EXPECT_NE(waits.find("| 1 | add | a F32[4], b F32[4] | 1 |"), std::string::npos) << table;
  // silu was the first op: nothing ran before it to wait after.
  EXPECT_EQ(waits.find("silu"), std::string::npos) << table;
  EXPECT_GE(
      std::strtod(table.c_str() + idle + std::string("Device idle before ops: ").size(), nullptr),
      25.0)
      << table;
}

TEST(OpProfiler, OnlyTheTopRowsAreListedAndTheRestSummed) {
  CpuBackend backend(1);
  HostOpProfiler profiler;
  backend.set_op_observer(&profiler);
  for (int64_t n = 1; n <= 5; ++n) backend.silu(backend.from_floats({n}, std::vector<float>(n)));
  backend.set_op_observer(nullptr);
  profiler.collect();
  const std::string table = profiler.table("top", 1, 2);
  const std::string by_shape = table.substr(0, table.find("Device idle"));
  EXPECT_NE(by_shape.find("(the rest)"), std::string::npos) << table;
  EXPECT_EQ(by_shape.find("| 3 | silu |"), std::string::npos) << table;
}

}  // namespace
}  // namespace ebb
