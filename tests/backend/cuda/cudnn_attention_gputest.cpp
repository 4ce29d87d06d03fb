// cuDNN's fused attention (backend/cuda/cudnn_attention.h) at every model shape of the
// attention bench that cuDNN takes (head dims 40, 64, 80, 128, 160; self and cross attention
// with 77 and 154 keys), f16 and bf16, in the backend's tokens-major layout and heads-major:
// against the float64 reference on sampled rows (the bounds of attention_gputest) and against
// Ebb's flash kernel on every output. Outputs are poisoned with NaN first and gaps between rows
// must stay untouched; two runs must agree bit for bit. A shape cuDNN has no plan for reports
// false and enqueues nothing. Skips without a GPU or without cuDNN attention (a build without
// the frontend, or no libcudnn.so.9 on the loader's path).
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudnnAttention, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cudnn_attention.h"
#include "backend/cuda/cudnn_attention_rule.h"
#include "support/attention_reference.h"
#include "support/cuda_test_support.h"

namespace ebb {
namespace {

using namespace attention_test;
using Sizes = attention_test::Shape;  // ebb::Shape is a tensor shape

class CudnnAttentionTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string why_not;
    if (!test::device_present(why_not)) GTEST_SKIP() << why_not;
    if (!cuda::cudnn_attention_loaded()) GTEST_SKIP() << cuda::cudnn_attention_description();
    CudaBackendOptions options;
    options.attention = AttentionKernelChoice::Ebb;  // the arena and stream only
    backend_ = std::make_unique<CudaBackend>(options);
    cudnn_ = std::make_unique<cuda::CudnnAttention>(backend_->arena(), backend_->stream());
  }

  std::vector<uint16_t> run_cudnn(DeviceProblem& d, size_t out_elems) {
    return run_poisoned(d, out_elems, backend_->stream(),
                        [&](const CudaAttentionArgs& a, cudaStream_t) {
                          ASSERT_TRUE(cudnn_->run(a)) << "cuDNN built no plan";
                        });
  }

  // cuDNN twice (bit-identical), against the reference and against Ebb's kernel.
  void expect_correct(const char* name, const Sizes& s, DType t, Layout layout) {
    SCOPED_TRACE(std::string(name) + " " + std::string(dtype_name(t)) + " " + layout_name(layout) +
                 " head_dim " + std::to_string(s.head_dim));
    const Problem p = make_problem(s, t, layout, std::nullopt, 5000 + s.head_dim + s.kv_len);
    DeviceProblem d(p);
    const size_t elems = p.out_placement.elems;
    const std::vector<uint16_t> first = run_cudnn(d, elems);
    const std::vector<uint16_t> second = run_cudnn(d, elems);
    EXPECT_EQ(std::memcmp(first.data(), second.data(), elems * 2), 0) << "two runs differ";
    const Check c = check_output(p, first);
    EXPECT_EQ(c.non_finite, 0) << "outputs left NaN or not finite";
    EXPECT_EQ(c.gap_writes, 0) << "elements between output rows were written";
    EXPECT_LE(c.max_error, tolerance(t));

    // Every output against Ebb's kernel, relative to the largest |v| (both are within
    // tolerance of the reference, so within twice that of each other).
    const std::vector<uint16_t> ours = run_poisoned(d, elems, backend_->stream(), cuda_attention);
    double max_v = 0;
    for (const uint16_t x : p.v.logical) max_v = std::max(max_v, double(std::abs(decode(x, t))));
    double apart = 0;
    for (size_t e = 0; e < elems; ++e) {
      if (ours[e] == kPoison) continue;  // a gap in both (checked above for cuDNN)
      const double diff = std::abs(double(decode(first[e], t)) - decode(ours[e], t)) / max_v;
      apart = std::max(apart, diff <= 1e300 ? diff : INFINITY);
    }
    EXPECT_LE(apart, 2 * tolerance(t)) << "cuDNN and Ebb's kernel disagree";
    std::printf("%-16s %-4s %-5s %2lldx%-2lld %5lldx%-5lld d%-3lld  ref %.2e  vs ebb %.2e\n", name,
                std::string(dtype_name(t)).c_str(), layout_name(layout), (long long)s.batch,
                (long long)s.heads, (long long)s.q_len, (long long)s.kv_len, (long long)s.head_dim,
                c.max_error, apart);
  }

  std::unique_ptr<CudaBackend> backend_;
  std::unique_ptr<cuda::CudnnAttention> cudnn_;
};

TEST_F(CudnnAttentionTest, ModelShapesMatchReferenceAndEbbKernel) {
  for (const NamedShape& m : kModelShapes) {
    const Sizes& s = m.shape;
    // Every shape but the VAE's (head dim 512, beyond cuDNN's fused attention).
    const bool supported =
        cudnn_attention_supports({s.batch, s.heads, s.q_len, s.kv_len, s.head_dim});
    ASSERT_EQ(supported, s.head_dim <= 256) << m.name;
    if (!supported) continue;
    for (const DType t : {DType::F16, DType::BF16}) {
      expect_correct(m.name, s, t, Layout::Blhd);
      expect_correct(m.name, s, t, Layout::Bhld);
    }
  }
}

// Rows with a gap after them (a view of a wider tensor, as fused projections give), and
// lengths that are no multiple of any tile.
TEST_F(CudnnAttentionTest, PaddedRowsAndOddLengths) {
  for (const int64_t dim : {40, 64, 80, 128, 160})
    for (const DType t : {DType::F16, DType::BF16})
      expect_correct("odd", {3, 2, 257, 129, dim}, t, Layout::BlhdPadded);
}

// A head dim that is no multiple of 8 has no plan: declined, nothing written, and the answer
// kept (asked twice).
TEST_F(CudnnAttentionTest, ShapeWithoutPlanIsDeclined) {
  const Problem p = make_problem({1, 1, 64, 64, 12}, DType::F16, Layout::Bhld, std::nullopt, 9);
  DeviceProblem d(p);
  const size_t elems = p.out_placement.elems;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::vector<uint16_t> out = run_poisoned(
        d, elems, backend_->stream(),
        [&](const CudaAttentionArgs& a, cudaStream_t) { EXPECT_FALSE(cudnn_->run(a)); });
    EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint16_t x) { return x == kPoison; }));
  }
}

// The backend takes cuDNN unless told not to.
TEST_F(CudnnAttentionTest, BackendUsesItUnlessTurnedOff) {
  EXPECT_FALSE(backend_->uses_cudnn_attention());
  CudaBackendOptions options;
  EXPECT_TRUE(CudaBackend(options).uses_cudnn_attention());
}

}  // namespace
}  // namespace ebb

#endif
