// The base Backend's activation dtype switch (what the overflow guard redoes a stage with) and
// its finiteness check, on the CPU backend.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace ebb {
namespace {

TEST(Backend, ActivationDtypeSwitchesOnlyToWhatTheBackendComputesIn) {
  CpuBackend backend(1);
  backend.set_activation_dtype(DType::F32);
  EXPECT_THROW(backend.set_activation_dtype(DType::F16), Error);
  EXPECT_EQ(backend.activation_dtype(), DType::F32);
}

TEST(Backend, AllFiniteFindsNanAndInfinity) {
  CpuBackend backend(1);
  std::vector<float> v(37, 1.0f);
  EXPECT_TRUE(backend.all_finite(backend.from_floats({37}, v)));
  v[36] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(backend.all_finite(backend.from_floats({37}, v)));
  v[36] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(backend.all_finite(backend.from_floats({37}, v)));
}

}  // namespace
}  // namespace ebb
