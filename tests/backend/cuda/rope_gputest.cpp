// The GPU RoPE, its tables and the timestep embedding against the CPU kernels
// (backend/cpu/kernels/rope.h, timestep_embedding.h): both pair layouts through [B, L, H·D]
// and [B, H, L, D] strides and in place, Flux's three-axis tables, SD and Flux timestep
// parameters with odd and even widths. Outputs are NaN-poisoned first. Skips without CUDA or
// without a device.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaRope, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/kernels/rope.h"
#include "backend/cpu/kernels/timestep_embedding.h"
#include "backend/cpu/thread_pool.h"
#include "backend/cuda/kernels/rope.h"
#include "backend/cuda/kernels/timestep_embedding.h"
#include "core/error.h"
#include "support/cuda_kernel_test_support.h"

namespace ebb {
namespace {

using test::DeviceArray;

// Flux's layout of positions: (0, row, column) for a grid, axes_dim (16, 56, 56).
std::vector<float> flux_ids(int64_t rows, int64_t cols) {
  std::vector<float> ids;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) ids.insert(ids.end(), {0.0f, float(r), float(c)});
  return ids;
}

template <class T>
class CudaRope : public test::CudaStreamTest {
 protected:
  ThreadPool pool_{2};
};
TYPED_TEST_SUITE(CudaRope, test::StorageTypes, test::StorageTypeNames);

TEST(CudaRopeTables, MatchCpu) {
  std::string why_not;
  if (!test::device_present(why_not)) GTEST_SKIP() << why_not;
  const std::vector<int64_t> axes = {16, 56, 56};
  const auto ids = flux_ids(37, 41);
  const int64_t tokens = 37 * 41, pairs = 64;
  std::vector<float> cos(tokens * pairs), sin(tokens * pairs);
  cpu::rope_tables(ids.data(), tokens, axes, 10000.0, cos.data(), sin.data());
  DeviceArray<float> did(ids), dcos(cos.size()), dsin(sin.size());
  dcos.poison();
  dsin.poison();
  cuda::rope_tables(did.get(), tokens, axes.data(), 3, 10000.0, dcos.get(), dsin.get(), nullptr);
  test::cuda_check(cudaDeviceSynchronize(), "sync");
  // Double angles rounded once: equal up to the last bit of double cos/sin.
  test::expect_close(dcos.download(), cos, {1e-6, 1e-7}, "cos");
  test::expect_close(dsin.download(), sin, {1e-6, 1e-7}, "sin");
}

TYPED_TEST(CudaRope, MatchesCpu) {
  using T = TypeParam;
  const int64_t batch = 2, heads = 3, tokens = 37, dim = 10;  // odd pair count
  const int64_t pairs = dim / 2;
  const auto x = test::rounded<T>(test::random_floats(batch * tokens * heads * dim, 1));
  const auto angles = test::random_floats(tokens * pairs, 2, -6.0f, 6.0f);
  std::vector<float> cos(angles.size()), sin(angles.size());
  for (size_t i = 0; i < angles.size(); ++i) {
    cos[i] = std::cos(angles[i]);
    sin[i] = std::sin(angles[i]);
  }
  DeviceArray<float> dcos(cos), dsin(sin);
  // Token-major [B, L, H·D] in, head-major [B, H, L, D] out; then in place.
  const cpu::Strides4 blhd = cpu::blhd_strides(heads, tokens, dim);
  const cpu::Strides4 bhld = cpu::bhld_strides(heads, tokens, dim);
  for (auto layout : {cpu::RopeLayout::InterleavedPairs, cpu::RopeLayout::SplitHalves}) {
    const auto pairs_of = layout == cpu::RopeLayout::InterleavedPairs
                              ? cuda::RopePairs::Interleaved
                              : cuda::RopePairs::SplitHalves;
    std::vector<float> want(x.size());
    cpu::apply_rope(x.data(), blhd, want.data(), bhld, {batch, heads, tokens, dim}, cos.data(),
                    sin.data(), layout, this->pool_);
    DeviceArray<T> dx(x), dy(x.size());
    dy.poison();
    cuda::rope(dx.get(), blhd, dy.get(), bhld, batch, heads, tokens, dim, dcos.get(), dsin.get(),
               pairs_of, this->stream_);
    cuda::rope(dx.get(), blhd, dx.get(), blhd, batch, heads, tokens, dim, dcos.get(), dsin.get(),
               pairs_of, this->stream_);
    this->sync();
    const std::string name =
        std::string(test::storage_name<T>()) +
        (pairs_of == cuda::RopePairs::Interleaved ? " interleaved" : " halves");
    test::expect_close(dy.download(), test::rounded<T>(want), test::storage_tolerance<T>(), name);
    std::vector<float> want_in_place(x.size());
    cpu::apply_rope(x.data(), blhd, want_in_place.data(), blhd, {batch, heads, tokens, dim},
                    cos.data(), sin.data(), layout, this->pool_);
    test::expect_close(dx.download(), test::rounded<T>(want_in_place), test::storage_tolerance<T>(),
                       name + " in place");
  }
}

TYPED_TEST(CudaRope, TimestepEmbeddingMatchesCpu) {
  using T = TypeParam;
  const std::vector<float> t = {0.0f, 1.0f, 17.5f, 999.0f, 0.25f};
  DeviceArray<float> dt(t);
  const cpu::TimestepEmbeddingParams custom{false, 0.5f, 2.0f, 5000.0f, 1.0f};
  const std::vector<float> flux_t = {0.0f, 0.3f, 1.0f, 0.999f, 0.5f};
  DeviceArray<float> dflux(flux_t);
  struct Run {
    const char* name;
    cpu::TimestepEmbeddingParams params;
    const std::vector<float>* times;
    const DeviceArray<float>* dev;
  };
  const Run runs[] = {{"sd", cpu::sd_timestep_params(), &t, &dt},
                      {"custom", custom, &t, &dt},
                      {"flux", cpu::flux_timestep_params(), &flux_t, &dflux}};
  for (const Run& run : runs) {
    for (int64_t dim : {2, 7, 320, 257}) {
      const int64_t n = int64_t(run.times->size());
      std::vector<float> want(n * dim);
      cpu::timestep_embedding(run.times->data(), n, dim, run.params, want.data());
      DeviceArray<T> out(want.size());
      out.poison();
      cuda::timestep_embedding(run.dev->get(), n, dim, run.params, out.get(), this->stream_);
      this->sync();
      // The GPU's exponential (double, rounded once) and glibc's expf may differ by an ulp of
      // a frequency (see cpu/kernels/timestep_embedding.h); the argument, up to scale · 1000,
      // then moves by an ulp of itself: the absolute tolerance.
      float max_arg = 0.0f;
      for (float v : *run.times)
        max_arg = std::max(max_arg, std::fabs(v * run.params.time_factor * run.params.scale));
      const test::Tolerance ulp_of_arg{1e-5, max_arg * 0x1p-23};
      test::expect_close(
          out.download(), test::rounded<T>(want),
          std::is_same_v<T, float> ? ulp_of_arg : test::storage_tolerance<T>(),
          std::string(test::storage_name<T>()) + " " + run.name + " dim=" + std::to_string(dim));
    }
  }
}

TEST(CudaRopeArguments, RejectsBadShapes) {
  float* p = nullptr;
  const cpu::Strides4 s{};
  EXPECT_THROW(cuda::rope(p, s, p, s, 1, 1, 1, 7, p, p, cuda::RopePairs::Interleaved, nullptr),
               Error);
  const int64_t odd_axes[] = {16, 55};
  EXPECT_THROW(cuda::rope_tables(p, 4, odd_axes, 2, 10000.0, p, p, nullptr), Error);
  const int64_t axes[] = {16};
  EXPECT_THROW(cuda::rope_tables(p, 4, axes, 1, 0.0, p, p, nullptr), Error);
  EXPECT_THROW(cuda::timestep_embedding(p, 3, 1, cpu::sd_timestep_params(), p, nullptr), Error);
}

}  // namespace
}  // namespace ebb

#endif  // EBB_HAVE_CUDA
