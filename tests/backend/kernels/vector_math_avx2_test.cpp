// Accuracy of the AVX2 exp and normal CDF behind attention's softmax and the activations,
// swept over their whole useful range against double precision.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/kernels/isa.h"

#if defined(__x86_64__)
#include "backend/cpu/kernels/vector_math_avx2.h"

namespace ebb::cpu {
namespace {

EBB_AVX2 std::vector<float> vector_exp(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i + 8 <= x.size(); i += 8)
    _mm256_storeu_ps(y.data() + i, avx2::exp(_mm256_loadu_ps(x.data() + i)));
  return y;
}

EBB_AVX2 std::vector<float> vector_normal_cdf(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i + 8 <= x.size(); i += 8)
    _mm256_storeu_ps(y.data() + i, avx2::normal_cdf(_mm256_loadu_ps(x.data() + i)));
  return y;
}

std::vector<float> sweep(float lo, float hi, size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = lo + (hi - lo) * static_cast<float>(i) / (n - 1);
  return x;
}

double ulp_error(float got, double want) {
  const double ulp = std::nextafter(static_cast<float>(want), std::numeric_limits<float>::max()) -
                     static_cast<float>(want);
  return std::abs(got - want) / ulp;
}

class VectorMathAvx2 : public testing::Test {
 protected:
  void SetUp() override {
    if (!isa_supported(Isa::Avx2Fma)) GTEST_SKIP() << "no AVX2/FMA on this processor";
  }
};

TEST_F(VectorMathAvx2, ExpWithinTwoUlpOverTheNormalRange) {
  const auto x = sweep(-87.3f, 88.7f, 1 << 20);
  const auto y = vector_exp(x);
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, ulp_error(y[i], std::exp(x[i])));
  EXPECT_LE(worst, 2.0);
}

TEST_F(VectorMathAvx2, ExpEdges) {
  const float inf = std::numeric_limits<float>::infinity();
  const auto y = vector_exp(
      {-inf, -1000.0f, -87.5f, 0.0f, -0.0f, 89.0f, inf, std::numeric_limits<float>::quiet_NaN()});
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 0.0f);  // below FLT_MIN: flushed
  EXPECT_EQ(y[3], 1.0f);
  EXPECT_EQ(y[4], 1.0f);
  EXPECT_EQ(y[5], inf);
  EXPECT_EQ(y[6], inf);
  EXPECT_TRUE(std::isnan(y[7]));
}

TEST_F(VectorMathAvx2, NormalCdfAbsoluteAndTailRelativeError) {
  const auto x = sweep(-13.0f, 13.0f, 1 << 20);
  const auto y = vector_normal_cdf(x);
  double worst_abs = 0, worst_tail = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = 0.5 * std::erfc(-x[i] / std::sqrt(2.0));
    worst_abs = std::max(worst_abs, std::abs(y[i] - want));
    // Φ of a negative input is a small number computed without cancellation: relative
    // accuracy, until it falls below float's normal range.
    if (x[i] < 0 && want > 1e-37) worst_tail = std::max(worst_tail, std::abs(y[i] / want - 1));
  }
  EXPECT_LE(worst_abs, 1.2e-7);
  EXPECT_LE(worst_tail, 1e-6);
  RecordProperty("worst_abs", std::to_string(worst_abs));
  RecordProperty("worst_tail_rel", std::to_string(worst_tail));
}

}  // namespace
}  // namespace ebb::cpu
#endif
