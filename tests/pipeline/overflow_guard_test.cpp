// The overflow guard's policy where no F16 backend exists (the CPU computes in F32): a finite
// stage runs once and is returned as it is; a stage that is not finite in F32 is an error
// naming it, never NaN pixels. The F16 → F32 redo is tested on the GPU
// (overflow_guard_gputest).
#include "pipeline/overflow_guard.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace ebb {
namespace {

TEST(OverflowGuard, FiniteStageRunsOnce) {
  CpuBackend backend(1);
  int runs = 0;
  const Tensor out = run_with_f32_fallback(backend, "stage", [&] {
    ++runs;
    return backend.from_floats({3}, std::vector<float>{1, 2, 3});
  });
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(backend.to_floats(out), (std::vector<float>{1, 2, 3}));
}

TEST(OverflowGuard, NonFiniteF32StageIsAnErrorNamingIt) {
  CpuBackend backend(1);
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    int runs = 0;
    try {
      run_with_f32_fallback(backend, "VAE decode", [&] {
        ++runs;
        return backend.from_floats({2}, std::vector<float>{0.5f, bad});
      });
      FAIL() << "a non-finite output was returned";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("VAE decode produced NaN or infinite values in F32"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(runs, 1);  // F32 was already in force: nothing to redo
  }
}

}  // namespace
}  // namespace ebb
