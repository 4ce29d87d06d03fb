#include "backend/cpu/kernels/activations.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "backend/cpu/thread_pool.h"
#include "core/error.h"
#include "kernel_test_util.h"

namespace ebb::cpu {
namespace {

using test::random_floats;
using test::relative_error;

double silu_ref(double x) {
  return x / (1 + std::exp(-x));
}
double sigmoid_ref(double x) {
  return 1 / (1 + std::exp(-x));
}
double gelu_erf_ref(double x) {
  return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
}
// x/2·(1 + tanh u) = x·sigmoid(2u), which double evaluates without cancellation.
double gelu_tanh_ref(double x) {
  return x * sigmoid_ref(2 * std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x));
}

// Values from a wide range, plus the edges: zeros, tiny, huge and the erf branch point.
std::vector<float> test_inputs(size_t n, uint32_t seed) {
  auto x = random_floats(n, seed, -12.0f, 12.0f);
  const float edges[] = {0.0f,       -0.0f,       1e-30f, -1e-30f, 1.41421356f, -1.41421356f,
                         1.4142135f, -1.4142137f, 80.0f,  -80.0f,  200.0f,      -200.0f,
                         6.0f,       -6.0f,       1e20f,  -1e20f,  3e38f,       -3e38f};
  for (size_t i = 0; i < std::size(edges) && i < n; ++i) x[i * 7 % n] = edges[i];
  return x;
}

using Unary = std::function<void(const float*, float*, int64_t, ThreadPool&, Isa)>;

struct UnaryCase {
  const char* name;
  Unary kernel;
  double (*reference)(double);
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"silu", [](auto x, auto y, auto n, auto& p, Isa i) { silu(x, y, n, p, i); }, silu_ref},
      {"sigmoid", [](auto x, auto y, auto n, auto& p, Isa i) { sigmoid(x, y, n, p, i); },
       sigmoid_ref},
      {"gelu",
       [](auto x, auto y, auto n, auto& p, Isa i) { gelu(x, y, n, GeluApproximation::None, p, i); },
       gelu_erf_ref},
      {"gelu_tanh",
       [](auto x, auto y, auto n, auto& p, Isa i) { gelu(x, y, n, GeluApproximation::Tanh, p, i); },
       gelu_tanh_ref},
  };
}

class ActivationsTest : public testing::TestWithParam<Isa> {
 protected:
  ThreadPool pool_{3};
};

// Element-wise bound: a few float ulps, scaled by how much the function itself magnifies the
// rounding of its input (its condition number |x·f'(x)/f(x)|, large in the far tails).
void expect_accurate(const char* name, double (*f)(double), const std::vector<float>& x,
                     const std::vector<float>& y) {
  int reported = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = f(x[i]);
    const double h = 1e-6;
    const double cond =
        want == 0 ? 0 : std::abs((f(x[i] * (1 + h)) - f(x[i] * (1 - h))) / (2 * h * want));
    const double tolerance = (4e-7 + 1.2e-7 * cond) * std::abs(want) + 1e-37;
    if (std::abs(y[i] - want) > tolerance && reported++ < 5)
      ADD_FAILURE() << name << "(" << x[i] << ") = " << y[i] << ", want " << want << " (condition "
                    << cond << ")";
  }
}

TEST_P(ActivationsTest, UnaryMatchesDoubleReference) {
  for (const auto& c : unary_cases()) {
    for (int64_t n : {1, 7, 8, 9, 1000, 100003}) {
      const auto x = test_inputs(n, static_cast<uint32_t>(n));
      std::vector<float> y(n);
      c.kernel(x.data(), y.data(), n, pool_, GetParam());
      std::vector<double> want(n);
      for (int64_t i = 0; i < n; ++i) want[i] = c.reference(x[i]);
      EXPECT_LE(relative_error(y.data(), want.data(), n), 1e-6) << c.name << " n=" << n;
      expect_accurate(c.name, c.reference, x, y);
    }
  }
}

TEST_P(ActivationsTest, GeluNegativeTailKeepsRelativeAccuracy) {
  // The exact GELU of large negative inputs is a tiny number; the erfc branch must keep it
  // rather than cancel 1 + erf(x) down to noise.
  std::vector<float> x;
  for (float v = -0.5f; v > -13.0f; v -= 0.01f) x.push_back(v);
  std::vector<float> y(x.size());
  gelu(x.data(), y.data(), static_cast<int64_t>(x.size()), GeluApproximation::None, pool_,
       GetParam());
  expect_accurate("gelu", gelu_erf_ref, x, y);
  gelu(x.data(), y.data(), static_cast<int64_t>(x.size()), GeluApproximation::Tanh, pool_,
       GetParam());
  expect_accurate("gelu_tanh", gelu_tanh_ref, x, y);
}

TEST_P(ActivationsTest, InPlaceEqualsOutOfPlace) {
  const auto x = test_inputs(5001, 3);
  for (const auto& c : unary_cases()) {
    std::vector<float> out(x.size()), inplace = x;
    c.kernel(x.data(), out.data(), 5001, pool_, GetParam());
    c.kernel(inplace.data(), inplace.data(), 5001, pool_, GetParam());
    EXPECT_EQ(out, inplace) << c.name;
  }
}

TEST_P(ActivationsTest, SameBitsForAnyThreadCountAndOffset) {
  const int64_t n = 200001;  // large enough to be split across threads
  const auto x = test_inputs(n, 4);
  for (const auto& c : unary_cases()) {
    ThreadPool one(1);
    std::vector<float> serial(n);
    c.kernel(x.data(), serial.data(), n, one, GetParam());
    for (int threads : {2, 3, 7}) {
      ThreadPool pool(threads);
      test::ShiftedBuffer in(x, threads % 4), out(std::vector<float>(n), 1);
      c.kernel(in.data(), out.data(), n, pool, GetParam());
      EXPECT_EQ(std::memcmp(out.data(), serial.data(), n * sizeof(float)), 0)
          << c.name << " " << threads << " threads";
    }
  }
}

TEST_P(ActivationsTest, GegluGatesWithSecondHalf) {
  for (auto approximation : {GeluApproximation::None, GeluApproximation::Tanh}) {
    const int64_t rows = 37, cols = 83, x_stride = 2 * cols + 5;
    const auto x = random_floats(rows * x_stride, 5, -8.0f, 8.0f);
    std::vector<float> y(rows * cols);
    geglu(x.data(), x_stride, y.data(), cols, rows, cols, approximation, pool_, GetParam());
    std::vector<double> want(rows * cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const double gate = x[r * x_stride + cols + c];
        want[r * cols + c] =
            x[r * x_stride + c] *
            (approximation == GeluApproximation::None ? gelu_erf_ref(gate) : gelu_tanh_ref(gate));
      }
    EXPECT_LE(relative_error(y.data(), want.data(), y.size()), 1e-6);

    // In place: the result lands in the hidden half of each row.
    std::vector<float> inplace = x;
    geglu(inplace.data(), x_stride, inplace.data(), x_stride, rows, cols, approximation, pool_,
          GetParam());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(inplace[r * x_stride + c], y[r * cols + c]);
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, ActivationsTest, testing::ValuesIn(test::runnable_isas()),
                         test::isa_param_name);

TEST(Activations, RejectsBadArguments) {
  ThreadPool pool(1);
  float v[4] = {};
  EXPECT_THROW(silu(v, v, -1, pool), Error);
  EXPECT_THROW(silu(nullptr, v, 4, pool), Error);
  EXPECT_THROW(geglu(v, 3, v, 2, 1, 2, GeluApproximation::None, pool), Error);
  EXPECT_NO_THROW(silu(nullptr, nullptr, 0, pool));
}

}  // namespace
}  // namespace ebb::cpu
