// Both kernel sets (portable and, where the CPU has it, AVX2) against plain loops, on lengths
// that exercise the vector bodies and the scalar tails.
#include "backend/cpu/vector_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/kernels/isa.h"
#include "op_test_util.h"

namespace ebb::cpu {
namespace {

std::vector<const VectorKernels*> kernel_sets() {
  std::vector<const VectorKernels*> sets{&portable_vector_kernels()};
  if (avx2_vector_kernels()) sets.push_back(avx2_vector_kernels());
  return sets;
}

TEST(VectorKernels, BestSetIsOneOfTheSets) {
  const char* best = vector_kernels().name;
  EXPECT_TRUE(std::string(best) == "portable" || std::string(best) == "avx2");
  if (isa_supported(Isa::Avx2Fma)) {
    EXPECT_STREQ(best, "avx2");
  }
}

TEST(VectorKernels, ReductionsMatchPlainSums) {
  for (const VectorKernels* k : kernel_sets()) {
    for (int64_t n : {0, 1, 7, 15, 16, 17, 33, 1000, 4099}) {
      const auto x = test::random_floats(n, uint32_t(n) + 1, -2.0f, 3.0f);
      double s = 0, sq = 0, dev = 0;
      for (float v : x) s += v, sq += double(v) * v;
      const double mean = n ? s / n : 0.0;
      for (float v : x) dev += (v - mean) * (v - mean);
      const double tol = 1e-12 * (1 + double(n));
      EXPECT_NEAR(k->sum(x.data(), n), s, tol * 3) << k->name << " n=" << n;
      EXPECT_NEAR(k->sum_squares(x.data(), n), sq, tol * 9) << k->name << " n=" << n;
      EXPECT_NEAR(k->sum_squared_deviations(x.data(), n, mean), dev, tol * 9)
          << k->name << " n=" << n;
    }
  }
}

TEST(VectorKernels, ElementwiseMatchPlainLoops) {
  for (const VectorKernels* k : kernel_sets()) {
    for (int64_t n : {1, 5, 8, 9, 31, 100}) {
      const auto a = test::random_floats(n, 11), b = test::random_floats(n, 12);
      const auto g = test::random_floats(n, 13), beta = test::random_floats(n, 14);
      std::vector<float> y(n);
      k->scale_shift(a.data(), y.data(), n, 0.25f, 1.5f, -0.5f);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], (a[i] - 0.25f) * 1.5f - 0.5f, 1e-6f);
      k->normalize(a.data(), y.data(), n, 0.1f, 2.0f, g.data(), beta.data());
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(y[i], (a[i] - 0.1f) * 2.0f * g[i] + beta[i], 1e-6f);
      k->normalize(a.data(), y.data(), n, 0.0f, 3.0f, nullptr, nullptr);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], a[i] * 3.0f, 1e-6f);
      k->add(a.data(), false, b.data(), false, y.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[i], a[i] + b[i]);
      k->add(a.data(), true, b.data(), false, y.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[i], a[0] + b[i]);
      k->mul(a.data(), false, b.data(), true, y.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[i], a[i] * b[0]);
    }
  }
}

}  // namespace
}  // namespace ebb::cpu
