// The kernel-backed ops (activations, softmax, attention, RoPE, timestep embedding) through the
// Backend interface: shapes, strided views and broadcast masks against naive references. The
// kernels' own accuracy against PyTorch is tested in tests/backend/kernels.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "op_test_util.h"

namespace ebb {
namespace {

using test::download;
using test::random_floats;
using test::relative_error;
using test::upload;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kTolerance = 1e-5;
constexpr float kInf = std::numeric_limits<float>::infinity();

double silu_ref(double x) {
  return x / (1 + std::exp(-x));
}
double gelu_ref(double x) {
  return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}
double gelu_tanh_ref(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

std::vector<double> map(const std::vector<float>& x, double (*f)(double)) {
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = f(x[i]);
  return y;
}

// q [B, Lq, H·D], k, v [B, Lkv, H·D] dense; mask(b, h, i, j) additive.
template <typename Mask>
std::vector<double> attention_ref(const std::vector<float>& q, const std::vector<float>& k,
                                  const std::vector<float>& v, int64_t b, int64_t lq, int64_t lkv,
                                  int64_t heads, int64_t d, Mask mask) {
  const int64_t width = heads * d;
  std::vector<double> out(b * lq * width, 0.0), p(lkv);
  for (int64_t n = 0; n < b; ++n)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < lq; ++i) {
        double top = -INFINITY;
        for (int64_t j = 0; j < lkv; ++j) {
          double s = 0;
          for (int64_t c = 0; c < d; ++c)
            s += double(q[(n * lq + i) * width + h * d + c]) * k[(n * lkv + j) * width + h * d + c];
          p[j] = s / std::sqrt(double(d)) + mask(n, h, i, j);
          top = std::max(top, p[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < lkv; ++j) sum += p[j] = std::exp(p[j] - top);
        for (int64_t j = 0; j < lkv; ++j)
          for (int64_t c = 0; c < d; ++c)
            out[(n * lq + i) * width + h * d + c] +=
                p[j] / sum * v[(n * lkv + j) * width + h * d + c];
      }
  return out;
}

class KernelOps : public ::testing::Test {
 protected:
  CpuBackend be{3};
};

TEST_F(KernelOps, Activations) {
  const auto x = random_floats(3 * 5 * 66, 1, -6.0f, 6.0f);
  Tensor t = upload(be, {3, 5, 66}, x);
  EXPECT_LE(relative_error(download(be, be.silu(t)), map(x, silu_ref)), kTolerance);
  EXPECT_LE(relative_error(download(be, be.gelu(t)), map(x, gelu_ref)), kTolerance);
  EXPECT_LE(
      relative_error(download(be, be.gelu(t, GeluApproximation::Tanh)), map(x, gelu_tanh_ref)),
      kTolerance);

  Tensor g = be.geglu(t);
  EXPECT_EQ(g.shape(), (Shape{3, 5, 33}));
  std::vector<double> ref(15 * 33);
  for (int64_t r = 0; r < 15; ++r)
    for (int64_t c = 0; c < 33; ++c) ref[r * 33 + c] = x[r * 66 + c] * gelu_ref(x[r * 66 + 33 + c]);
  EXPECT_LE(relative_error(download(be, g), ref), kTolerance);
}

TEST_F(KernelOps, SoftmaxOverTheLastDimension) {
  const auto x = random_floats(4 * 77, 2, -10.0f, 10.0f);
  std::vector<double> ref(x.size());
  for (int64_t r = 0; r < 4; ++r) {
    double top = -INFINITY, sum = 0;
    for (int64_t c = 0; c < 77; ++c) top = std::max(top, double(x[r * 77 + c]));
    for (int64_t c = 0; c < 77; ++c) sum += ref[r * 77 + c] = std::exp(x[r * 77 + c] - top);
    for (int64_t c = 0; c < 77; ++c) ref[r * 77 + c] /= sum;
  }
  EXPECT_LE(relative_error(download(be, be.softmax(upload(be, {2, 2, 77}, x))), ref), kTolerance);
}

TEST_F(KernelOps, AttentionMatchesNaive) {
  const int64_t b = 2, lq = 37, lkv = 19, heads = 3, d = 24;
  const auto q = random_floats(b * lq * heads * d, 3), k = random_floats(b * lkv * heads * d, 4);
  const auto v = random_floats(b * lkv * heads * d, 5);
  Tensor tq = upload(be, {b, lq, heads * d}, q), tk = upload(be, {b, lkv, heads * d}, k);
  Tensor tv = upload(be, {b, lkv, heads * d}, v);
  auto none = [](int64_t, int64_t, int64_t, int64_t) { return 0.0; };
  EXPECT_LE(relative_error(download(be, be.attention(tq, tk, tv, heads)),
                           attention_ref(q, k, v, b, lq, lkv, heads, d, none)),
            kTolerance);

  // A padding mask [B, 1, 1, Lkv] hiding the last keys of batch 1, and a [Lq, Lkv] bias.
  std::vector<float> pad(b * lkv, 0.0f);
  for (int64_t j = 12; j < lkv; ++j) pad[lkv + j] = -kInf;
  const auto bias = random_floats(lq * lkv, 6);
  auto padded = [&](int64_t n, int64_t, int64_t, int64_t j) { return double(pad[n * lkv + j]); };
  auto biased = [&](int64_t, int64_t, int64_t i, int64_t j) { return double(bias[i * lkv + j]); };
  EXPECT_LE(
      relative_error(download(be, be.attention(tq, tk, tv, heads, upload(be, {b, 1, 1, lkv}, pad))),
                     attention_ref(q, k, v, b, lq, lkv, heads, d, padded)),
      kTolerance);
  EXPECT_LE(
      relative_error(download(be, be.attention(tq, tk, tv, heads, upload(be, {lq, lkv}, bias))),
                     attention_ref(q, k, v, b, lq, lkv, heads, d, biased)),
      kTolerance);
}

TEST_F(KernelOps, AttentionReadsSlicesOfAFusedProjection) {
  const int64_t b = 1, l = 21, heads = 2, d = 16, w = heads * d;
  const auto qkv = random_floats(b * l * 3 * w, 7);
  Tensor fused = upload(be, {b, l, 3 * w}, qkv);
  const auto parts = be.split(fused, {w, w, w}, -1);
  const auto dense = download(be, be.attention(parts[0], parts[1], parts[2], heads));
  const auto viewed = download(be, be.attention(fused.narrow(2, 0, w), fused.narrow(2, w, w),
                                                fused.narrow(2, 2 * w, w), heads));
  ASSERT_EQ(dense.size(), viewed.size());
  EXPECT_EQ(0, std::memcmp(dense.data(), viewed.data(), dense.size() * sizeof(float)));
}

TEST_F(KernelOps, RopeRotatesChannelPairs) {
  const int64_t b = 2, l = 5, heads = 3, d = 8, pairs = d / 2;
  const auto x = random_floats(b * l * heads * d, 8);
  const auto angle = random_floats(l * pairs, 9, -3.0f, 3.0f);
  std::vector<float> c(angle.size()), s(angle.size());
  for (size_t i = 0; i < angle.size(); ++i) c[i] = std::cos(angle[i]), s[i] = std::sin(angle[i]);
  Tensor tx = upload(be, {b, l, heads * d}, x);
  Tensor tc = upload(be, {l, pairs}, c), ts = upload(be, {l, pairs}, s);
  for (RopeLayout layout : {RopeLayout::InterleavedPairs, RopeLayout::SplitHalves}) {
    std::vector<double> ref(x.size());
    for (int64_t row = 0; row < b * l * heads; ++row) {
      const int64_t t = row / heads % l;
      for (int64_t p = 0; p < pairs; ++p) {
        const int64_t i0 = layout == RopeLayout::InterleavedPairs ? 2 * p : p;
        const int64_t i1 = layout == RopeLayout::InterleavedPairs ? 2 * p + 1 : p + pairs;
        const double x0 = x[row * d + i0], x1 = x[row * d + i1];
        ref[row * d + i0] = x0 * c[t * pairs + p] - x1 * s[t * pairs + p];
        ref[row * d + i1] = x1 * c[t * pairs + p] + x0 * s[t * pairs + p];
      }
    }
    EXPECT_LE(relative_error(download(be, be.rope(tx, heads, tc, ts, layout)), ref), kTolerance);
  }
}

TEST_F(KernelOps, RopeTablesFollowThePositions) {
  const std::vector<float> ids = {0, 0, 0, 0, 3, 7, 1, 2, 5};  // 3 tokens, 3 axes
  const std::vector<int64_t> axes = {2, 4, 6};
  const auto [c, s] = be.rope_tables(upload(be, {3, 3}, ids), axes, 10000.0);
  EXPECT_EQ(c.shape(), (Shape{3, 6}));
  const auto cv = download(be, c), sv = download(be, s);
  for (int64_t t = 0, p = 0; t < 3; ++t)
    for (int64_t a = 0; a < 3; ++a)
      for (int64_t k = 0; k < axes[a] / 2; ++k, ++p) {
        const double angle = ids[t * 3 + a] * std::pow(10000.0, -2.0 * k / double(axes[a]));
        EXPECT_NEAR(cv[p], std::cos(angle), 1e-6);
        EXPECT_NEAR(sv[p], std::sin(angle), 1e-6);
      }
}

TEST_F(KernelOps, TimestepEmbedding) {
  const std::vector<float> t = {0.0f, 1.0f, 250.5f, 999.0f};
  const int64_t dim = 320, half = dim / 2;
  const auto out =
      download(be, be.timestep_embedding(upload(be, {4}, t), dim, cpu::sd_timestep_params()));
  std::vector<double> ref(4 * dim);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t i = 0; i < half; ++i) {
      const double arg = t[n] * std::exp(-std::log(10000.0) * double(i) / double(half));
      ref[n * dim + i] = std::cos(arg);  // flip_sin_to_cos: cos first
      ref[n * dim + half + i] = std::sin(arg);
    }
  EXPECT_LE(relative_error(out, ref), 1e-4);  // float32 arguments near 1000 carry ~1e-5 each
}

TEST_F(KernelOps, BadShapesAreErrors) {
  Tensor x = be.empty({2, 7, 12});
  EXPECT_THAT([&] { be.geglu(be.empty({2, 5})); }, ThrowsMessage<Error>(HasSubstr("geglu")));
  EXPECT_THAT([&] { be.attention(x, x, x, 5); },
              ThrowsMessage<Error>(HasSubstr("attention: q F32[2, 7, 12]")));
  EXPECT_THAT(
      [&] {
        be.attention(x, x, be.empty({2, 6, 12}), 2);
      },
      ThrowsMessage<Error>(HasSubstr("v F32[2, 6, 12]")));
  EXPECT_THAT(
      [&] {
        be.attention(x, x, x, 2, be.empty({3, 7}));
      },
      ThrowsMessage<Error>(
          HasSubstr("mask F32[3, 7] does not broadcast to the scores [2, 2, 7, 7]")));
  Tensor wide = be.empty({2, 12, 7});
  EXPECT_THAT(
      [&] {
        be.attention(wide.permuted({0, 2, 1}), x, x, 2);
      },
      ThrowsMessage<Error>(HasSubstr("last dimension of q")));
  EXPECT_THAT(
      [&] {
        be.rope(x, 2, be.empty({7, 2}), be.empty({7, 2}), RopeLayout::SplitHalves);
      },
      ThrowsMessage<Error>(HasSubstr("rope: x F32[2, 7, 12] with 2 heads")));
  EXPECT_THAT(
      [&] {
        be.rope_tables(be.empty({4, 2}), {16, 56, 56}, 10000.0);
      },
      ThrowsMessage<Error>(HasSubstr("rope_tables: ids F32[4, 2]")));
  EXPECT_THAT(
      [&] {
        be.timestep_embedding(be.empty({2, 2}), 8, {});
      },
      ThrowsMessage<Error>(HasSubstr("timestep_embedding")));
  EXPECT_THAT([&] { be.silu(be.empty({4}, DType::F16)); },
              ThrowsMessage<Error>(HasSubstr("silu on cpu does not support x F16[4]")));
}

}  // namespace
}  // namespace ebb
