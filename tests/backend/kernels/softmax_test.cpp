#include "backend/cpu/kernels/softmax.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/thread_pool.h"
#include "core/error.h"
#include "kernel_test_util.h"

namespace ebb::cpu {
namespace {

using test::random_floats;
using test::relative_error;

std::vector<double> softmax_ref(const float* x, int64_t n) {
  double max = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::max(max, static_cast<double>(x[i]));
  std::vector<double> y(n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += y[i] = std::exp(x[i] - max);
  for (auto& v : y) v /= sum;
  return y;
}

class SoftmaxTest : public testing::TestWithParam<Isa> {
 protected:
  ThreadPool pool_{3};
};

TEST_P(SoftmaxTest, MatchesDoubleReference) {
  for (int64_t cols : {1, 5, 8, 77, 4096}) {
    const int64_t rows = 33, stride = cols + 3;
    // Large offsets: without subtracting the max, exp would overflow.
    auto x = random_floats(rows * stride, static_cast<uint32_t>(cols), 50.0f, 120.0f);
    x[2] = -std::numeric_limits<float>::infinity();
    std::vector<float> y(rows * cols);
    softmax_rows(x.data(), stride, y.data(), cols, rows, cols, pool_, GetParam());
    for (int64_t r = 0; r < rows; ++r) {
      if (r == 0 && cols <= 2) continue;  // the -inf entry leaves a degenerate row
      const auto want = softmax_ref(x.data() + r * stride, cols);
      // The float sum over thousands of terms dominates the error.
      EXPECT_LE(relative_error(y.data() + r * cols, want.data(), cols), 1e-5)
          << "row " << r << " cols " << cols;
    }
  }
}

TEST_P(SoftmaxTest, InPlaceAndThreadCountInvariant) {
  const int64_t rows = 300, cols = 333;
  const auto x = random_floats(rows * cols, 9, -20.0f, 20.0f);
  std::vector<float> serial(x.size());
  ThreadPool one(1);
  softmax_rows(x.data(), cols, serial.data(), cols, rows, cols, one, GetParam());
  std::vector<float> inplace = x;
  softmax_rows(inplace.data(), cols, inplace.data(), cols, rows, cols, pool_, GetParam());
  EXPECT_EQ(std::memcmp(inplace.data(), serial.data(), x.size() * sizeof(float)), 0);
}

TEST_P(SoftmaxTest, AllMinusInfinityRowIsNaNAsInTorch) {
  std::vector<float> x(10, -std::numeric_limits<float>::infinity()), y(10);
  softmax_rows(x.data(), 10, y.data(), 10, 1, 10, pool_, GetParam());
  for (float v : y) EXPECT_TRUE(std::isnan(v));
}

INSTANTIATE_TEST_SUITE_P(Isas, SoftmaxTest, testing::ValuesIn(test::runnable_isas()),
                         test::isa_param_name);

TEST(Softmax, RejectsBadArguments) {
  ThreadPool pool(1);
  float v[4] = {};
  EXPECT_THROW(softmax_rows(v, 1, v, 2, 2, 2, pool), Error);
  EXPECT_THROW(softmax_rows(v, 2, v, 2, -1, 2, pool), Error);
  EXPECT_THROW(softmax_rows(nullptr, 2, v, 2, 1, 2, pool), Error);
}

}  // namespace
}  // namespace ebb::cpu
