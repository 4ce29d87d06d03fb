// The GPU normalisations against naive double references, for f32, f16 and bf16 storage, at
// shapes that leave partial vectors, misaligned rows, one- and many-warp teams, and groups far
// from zero mean. Outputs are NaN-poisoned first. Skips without CUDA or without a device.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaNorms, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/cuda/kernels/norms.h"
#include "core/error.h"
#include "support/cuda_kernel_test_support.h"

namespace ebb {
namespace {

using test::DeviceArray;

struct GroupShape {
  int64_t n, c, s, groups;
};

// x in NCHW ([n, c, s]) or channels-last ([n, s, c]) order.
std::vector<float> group_norm_reference(const std::vector<float>& x,
                                        const std::vector<float>& gamma,
                                        const std::vector<float>& beta, GroupShape g, float eps,
                                        bool channels_last) {
  std::vector<float> y(x.size());
  const int64_t cpg = g.c / g.groups;
  auto index = [&](int64_t n, int64_t c, int64_t s) {
    return channels_last ? (n * g.s + s) * g.c + c : (n * g.c + c) * g.s + s;
  };
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      double sum = 0, sq = 0;
      for (int64_t c = grp * cpg; c < (grp + 1) * cpg; ++c)
        for (int64_t s = 0; s < g.s; ++s) sum += x[index(n, c, s)];
      const double count = double(cpg * g.s), mean = sum / count;
      for (int64_t c = grp * cpg; c < (grp + 1) * cpg; ++c)
        for (int64_t s = 0; s < g.s; ++s)
          sq += (x[index(n, c, s)] - mean) * (x[index(n, c, s)] - mean);
      const double rstd = 1.0 / std::sqrt(sq / count + eps);
      for (int64_t c = grp * cpg; c < (grp + 1) * cpg; ++c)
        for (int64_t s = 0; s < g.s; ++s) {
          const int64_t i = index(n, c, s);
          double v = (x[i] - mean) * rstd;
          if (!gamma.empty()) v *= gamma[c];
          if (!beta.empty()) v += beta[c];
          y[i] = float(v);
        }
    }
  }
  return y;
}

std::vector<float> row_norm_reference(const std::vector<float>& x, const std::vector<float>& gamma,
                                      const std::vector<float>& beta, int64_t rows, int64_t d,
                                      float eps, bool rms) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x.data() + r * d;
    double mean = 0, sq = 0;
    if (!rms) {
      for (int64_t i = 0; i < d; ++i) mean += row[i];
      mean /= double(d);
    }
    for (int64_t i = 0; i < d; ++i) sq += (row[i] - mean) * (row[i] - mean);
    const double rstd = 1.0 / std::sqrt(sq / double(d) + eps);
    for (int64_t i = 0; i < d; ++i) {
      double v = (row[i] - mean) * rstd;
      if (!gamma.empty()) v *= gamma[i];
      if (!beta.empty()) v += beta[i];
      y[r * d + i] = float(v);
    }
  }
  return y;
}

// Normalising cancels: an output near zero carries the rounding of inputs and of the mean,
// about one ulp of max|x|, times rstd. The absolute tolerance scales with max|x| / stddev(x).
double cancellation_scale(const std::vector<float>& x) {
  double sum = 0, sq = 0, max = 0;
  for (float v : x) sum += v;
  const double mean = sum / double(x.size());
  for (float v : x) {
    sq += (v - mean) * (v - mean);
    max = std::max(max, std::fabs(double(v)));
  }
  return max / std::sqrt(sq / double(x.size()));
}

template <class T>
class CudaNorms : public test::CudaStreamTest {};
TYPED_TEST_SUITE(CudaNorms, test::StorageTypes, test::StorageTypeNames);

template <class T>
void run_group_norm(cudaStream_t stream, GroupShape g, bool channels_last, bool affine, float mean,
                    uint32_t seed) {
  const float eps = 1e-5f;
  const auto x =
      test::rounded<T>(test::random_floats(g.n * g.c * g.s, seed, mean - 1.0f, mean + 1.0f));
  const auto gamma = affine ? test::rounded<T>(test::random_floats(g.c, seed + 1, 0.5f, 1.5f))
                            : std::vector<float>{};
  const auto beta =
      affine ? test::rounded<T>(test::random_floats(g.c, seed + 2)) : std::vector<float>{};
  DeviceArray<T> dx(x), dg(gamma), db(beta), dy(x.size());
  dy.poison();
  const T* gp = affine ? dg.get() : nullptr;
  const T* bp = affine ? db.get() : nullptr;
  if (channels_last)
    cuda::group_norm_channels_last(dx.get(), gp, bp, dy.get(), g.n, g.c, g.s, g.groups, eps,
                                   stream);
  else
    cuda::group_norm(dx.get(), gp, bp, dy.get(), g.n, g.c, g.s, g.groups, eps, stream);
  test::cuda_check(cudaStreamSynchronize(stream), "sync");
  test::expect_close(dy.download(), group_norm_reference(x, gamma, beta, g, eps, channels_last),
                     test::storage_tolerance<T>(cancellation_scale(x)),
                     std::string(test::storage_name<T>()) + (channels_last ? " NHWC" : " NCHW") +
                         " n=" + std::to_string(g.n) + " c=" + std::to_string(g.c) +
                         " s=" + std::to_string(g.s) + " groups=" + std::to_string(g.groups) +
                         (affine ? " affine" : ""));
}

TYPED_TEST(CudaNorms, GroupNormMatchesReference) {
  // Odd spatial sizes, one channel per group, groups split over clusters of 2 to 8 blocks,
  // a mean of 20 with a spread of 0.5 (cancellation), and SD's 32 groups of 320 channels.
  const GroupShape shapes[] = {
      {1, 6, 7, 3}, {3, 10, 33, 5}, {2, 32, 65, 32}, {1, 128, 1025, 4}, {2, 320, 256, 32}};
  uint32_t seed = 1;
  for (const GroupShape& g : shapes)
    for (bool channels_last : {false, true})
      for (bool affine : {false, true})
        run_group_norm<TypeParam>(this->stream_, g, channels_last, affine, 0.0f, seed++);
  run_group_norm<TypeParam>(this->stream_, {2, 64, 999, 8}, false, true, 20.0f, 99);
  run_group_norm<TypeParam>(this->stream_, {2, 64, 999, 8}, true, true, 20.0f, 98);
}

template <class T>
void run_row_norm(cudaStream_t stream, int64_t rows, int64_t d, bool rms, bool affine,
                  bool in_place, uint32_t seed) {
  const float eps = 1e-6f;
  const auto x =
      test::rounded<T>(test::random_floats(rows * d, seed, rms ? -2.0f : 1.0f, rms ? 2.0f : 5.0f));
  const auto gamma = affine ? test::rounded<T>(test::random_floats(d, seed + 1, 0.5f, 1.5f))
                            : std::vector<float>{};
  const auto beta =
      affine && !rms ? test::rounded<T>(test::random_floats(d, seed + 2)) : std::vector<float>{};
  DeviceArray<T> dx(x), dg(gamma), db(beta), dy(x.size());
  dy.poison();
  T* out = in_place ? dx.get() : dy.get();
  const T* gp = affine ? dg.get() : nullptr;
  if (rms)
    cuda::rms_norm(dx.get(), gp, out, rows, d, eps, stream);
  else
    cuda::layer_norm(dx.get(), gp, beta.empty() ? nullptr : db.get(), out, rows, d, eps, stream);
  test::cuda_check(cudaStreamSynchronize(stream), "sync");
  test::expect_close(in_place ? dx.download() : dy.download(),
                     row_norm_reference(x, gamma, beta, rows, d, eps, rms),
                     test::storage_tolerance<T>(cancellation_scale(x)),
                     std::string(test::storage_name<T>()) + (rms ? " rms_norm" : " layer_norm") +
                         " rows=" + std::to_string(rows) + " d=" + std::to_string(d) +
                         (affine ? " affine" : "") + (in_place ? " in place" : ""));
}

TYPED_TEST(CudaNorms, LayerAndRmsNormMatchReference) {
  // Few rows (a block per row), many rows (a warp per row), rows longer than a warp's
  // preferred 4096, odd lengths that misalign every other row.
  const std::pair<int64_t, int64_t> shapes[] = {{3, 7},    {1030, 320},  {1100, 77},
                                                {5, 5000}, {1024, 4100}, {2048, 128}};
  uint32_t seed = 100;
  for (auto [rows, d] : shapes)
    for (bool rms : {false, true})
      for (bool affine : {false, true})
        run_row_norm<TypeParam>(this->stream_, rows, d, rms, affine, false, seed++);
  run_row_norm<TypeParam>(this->stream_, 1030, 320, false, true, true, 7);
  run_row_norm<TypeParam>(this->stream_, 9, 1281, true, true, true, 8);
}

TEST(CudaNormArguments, RejectsBadShapesBeforeLaunching) {
  float* p = nullptr;
  EXPECT_THROW(cuda::group_norm(p, p, p, p, 1, 10, 4, 3, 1e-5f, nullptr), Error);
  EXPECT_THROW(cuda::group_norm(p, p, p, p, 1, 10, 4, 0, 1e-5f, nullptr), Error);
  EXPECT_THROW(cuda::layer_norm(p, p, p, p, -1, 4, 1e-5f, nullptr), Error);
  // Nothing to do: no launch, no error.
  EXPECT_NO_THROW(cuda::rms_norm(p, p, p, 0, 4, 1e-5f, nullptr));
  EXPECT_NO_THROW(cuda::group_norm(p, p, p, p, 0, 10, 4, 5, 1e-5f, nullptr));
}

}  // namespace
}  // namespace ebb

#endif  // EBB_HAVE_CUDA
