// The GPU flash attention against a float64 reference computed from the same rounded f16/bf16
// inputs, at every shape the supported models use and at odd sizes, in both dtypes and several
// layouts. Outputs are poisoned with NaN before every run; strided layouts leave gaps that the
// kernel must neither read (they hold NaN in the inputs) nor write; two runs must agree bit for
// bit. Prints a summary table (shape, dtype, layout, max error); timings are
// bench/cuda_attention_bench.cpp's. Skips without CUDA or without a device; the
// argument checks run without a device.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaAttention, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "core/error.h"
#include "support/attention_reference.h"
#include "support/cuda_test_support.h"

namespace ebb {
namespace {

using namespace attention_test;

// Poisons the output, runs Ebb's kernel, and returns the whole output buffer.
std::vector<uint16_t> run(DeviceProblem& d, size_t out_elems, cudaStream_t stream) {
  return run_poisoned(d, out_elems, stream, cuda_attention);
}

struct SummaryRow {
  std::string name;
  std::string dtype;
  std::string layout;
  Shape shape;
  double max_error;
};

std::vector<SummaryRow>& summary() {
  static std::vector<SummaryRow> rows;
  return rows;
}

class CudaAttention : public test::CudaStreamTest {
 protected:
  static void TearDownTestSuite() {
    if (summary().empty()) return;
    std::printf("\n%-24s %-5s %-9s %5s %5s %6s %6s %4s %10s\n", "case", "dtype", "layout", "batch",
                "heads", "q_len", "kv_len", "dim", "max_err");
    for (const SummaryRow& r : summary())
      std::printf("%-24s %-5s %-9s %5lld %5lld %6lld %6lld %4lld %10.2e\n", r.name.c_str(),
                  r.dtype.c_str(), r.layout.c_str(), (long long)r.shape.batch,
                  (long long)r.shape.heads, (long long)r.shape.q_len, (long long)r.shape.kv_len,
                  (long long)r.shape.head_dim, r.max_error);
    summary().clear();
  }

  // Runs one problem twice (both runs over fresh poison, compared bit for bit) and checks it.
  // Speed is bench/cuda_attention_bench's business.
  void expect_correct(const std::string& name, const Shape& s, DType t, Layout layout,
                      std::optional<float> scale = std::nullopt) {
    const std::string what = name + " " + std::string(dtype_name(t)) + " " + layout_name(layout);
    SCOPED_TRACE(what);
    const Problem p = make_problem(s, t, layout, scale, 1000 + summary().size());
    DeviceProblem d(p);
    const std::vector<uint16_t> first = run(d, p.out_placement.elems, stream_);
    const std::vector<uint16_t> second = run(d, p.out_placement.elems, stream_);
    EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * 2), 0) << "two runs differ";
    const Check c = check_output(p, first);
    EXPECT_EQ(c.non_finite, 0) << "outputs left NaN or not finite";
    EXPECT_EQ(c.gap_writes, 0) << "elements between output rows were written";
    EXPECT_LE(c.max_error, tolerance(t));
    summary().push_back({name, std::string(dtype_name(t)), layout_name(layout), s, c.max_error});
  }
};

constexpr DType kTypes[] = {DType::F16, DType::BF16};

TEST_F(CudaAttention, ModelShapes) {
  for (const NamedShape& m : kModelShapes)
    for (const DType t : kTypes) {
      expect_correct(m.name, m.shape, t, Layout::Blhd);
      expect_correct(m.name, m.shape, t, Layout::Bhld);
    }
}

constexpr int64_t kHeadDims[] = {40, 64, 80, 128, 160, 512};

// Lengths of one, below and across every tile size, and not multiples of any.
TEST_F(CudaAttention, OddShapes) {
  const Shape shapes[] = {{1, 1, 1, 1, 0},     {1, 2, 1, 77, 0},  {2, 1, 77, 77, 0},
                          {1, 3, 130, 200, 0}, {3, 2, 33, 17, 0}, {1, 1, 257, 129, 0}};
  for (const int64_t dim : kHeadDims)
    for (Shape s : shapes) {
      s.head_dim = dim;
      for (const DType t : kTypes) expect_correct("odd", s, t, Layout::BlhdPadded);
    }
}

// The odd shapes above are small enough to take every head dimension's narrow tiling (see
// attention.cu); these many-head ones take the wide tilings, with partial key tiles too.
TEST_F(CudaAttention, OddShapesWideTilings) {
  for (const int64_t dim : {64, 80, 160})
    for (const DType t : kTypes)
      expect_correct("odd wide", {2, 64, 1100, 999, dim}, t, Layout::BlhdPadded);
}

// Distance in units in the last place between two f16 or bf16 values of the same format:
// sign-magnitude bits mapped to a line of consecutive integers.
int ulp_distance(uint16_t a, uint16_t b) {
  const auto line = [](uint16_t x) { return x & 0x8000 ? -int(x & 0x7FFF) : int(x); };
  return std::abs(line(a) - line(b));
}

// How far two outputs of one problem are apart.
void print_difference(const std::string& what, const Shape& s, DType t,
                      const std::vector<uint16_t>& first, const std::vector<uint16_t>& second) {
  int max_ulp = 0;
  double max_difference = 0;
  int64_t differing = 0;
  for (size_t e = 0; e < first.size(); ++e) {
    const uint16_t a = first[e], b = second[e];
    if (a == b) continue;
    ++differing;
    if ((a ^ b) < 0x8000) max_ulp = std::max(max_ulp, ulp_distance(a, b));
    max_difference = std::max(max_difference, double(std::abs(decode(a, t) - decode(b, t))));
  }
  std::printf(
      "%s, %lldx%lld heads, %lldx%lld, dim %lld: %lld of %zu outputs differ, by at most %d ulp "
      "(same sign) and %.2e\n",
      what.c_str(), (long long)s.batch, (long long)s.heads, (long long)s.q_len, (long long)s.kv_len,
      (long long)s.head_dim, (long long)differing, first.size(), max_ulp, max_difference);
}

// Every tiling of a head dimension, forced, checked against the reference and run kRepeats
// times over fresh poison: a race on shared memory or a read of something never written shows
// up as runs that differ. The tilings differ from each other only by rounding (another order of
// the same sums); their distance is printed.
void expect_tilings_deterministic(const Shape& s, cudaStream_t stream) {
  constexpr int kRepeats = 8;
  for (const DType t : kTypes) {
    SCOPED_TRACE(std::string(dtype_name(t)) + " head_dim " + std::to_string(s.head_dim));
    const Problem p = make_problem(s, t, Layout::BlhdPadded, std::nullopt, 7 + s.head_dim);
    DeviceProblem d(p);
    std::vector<uint16_t> outputs[2];
    const CudaAttentionTiling tilings[2] = {CudaAttentionTiling::Wide, CudaAttentionTiling::Narrow};
    for (int n = 0; n < 2; ++n) {
      d.args.tiling = tilings[n];
      outputs[n] = run(d, p.out_placement.elems, stream);
      const Check c = check_output(p, outputs[n]);
      EXPECT_EQ(c.non_finite, 0) << "tiling " << n << ": outputs left NaN or not finite";
      EXPECT_EQ(c.gap_writes, 0) << "tiling " << n << ": elements between rows were written";
      EXPECT_LE(c.max_error, tolerance(t)) << "tiling " << n;
      int differing_runs = 0;
      for (int r = 1; r < kRepeats; ++r)
        if (run(d, p.out_placement.elems, stream) != outputs[n]) ++differing_runs;
      EXPECT_EQ(differing_runs, 0) << "tiling " << n << ": runs differ from the first";
    }
    print_difference(std::string("tilings wide/narrow, ") + std::string(dtype_name(t)), s, t,
                     outputs[0], outputs[1]);
  }
}

// Small enough for compute-sanitizer's racecheck and initcheck: several blocks, several key
// tiles and a partial one on every tiling.
TEST_F(CudaAttention, EveryTilingDeterministicSmall) {
  for (const int64_t dim : kHeadDims) expect_tilings_deterministic({1, 2, 130, 200, dim}, stream_);
}

// Hundreds of blocks per call (64 at head dim 512), many side by side in varying company.
TEST_F(CudaAttention, EveryTilingDeterministic) {
  for (const int64_t dim : kHeadDims)
    expect_tilings_deterministic({2, dim == 512 ? 1 : 16, 1000, 1100, dim}, stream_);
}

TEST_F(CudaAttention, ExplicitScale) {
  for (const int64_t dim : kHeadDims)
    expect_correct("scale 0.05", {1, 2, 100, 90, dim}, DType::BF16, Layout::Bhld, 0.05f);
}

// Argument checks happen before anything touches the device.
class CudaAttentionArguments : public testing::Test {
 protected:
  CudaAttentionArgs valid() const {
    CudaAttentionArgs a;
    a.dtype = DType::BF16;
    a.batch = 1;
    a.heads = 2;
    a.q_len = 16;
    a.kv_len = 16;
    a.head_dim = 64;
    a.q = a.k = a.v = fake_;
    a.out = fake_;
    a.q_strides = a.k_strides = a.v_strides = a.out_strides = cpu::blhd_strides(2, 16, 64);
    return a;
  }
  void expect_rejected(const CudaAttentionArgs& a, const char* needle) {
    try {
      cuda_attention(a, nullptr);
      ADD_FAILURE() << "accepted; expected an error mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  alignas(16) static inline unsigned char storage_[16];
  void* fake_ = storage_;
};

TEST_F(CudaAttentionArguments, RejectsBadArguments) {
  CudaAttentionArgs a = valid();
  a.dtype = DType::F32;
  expect_rejected(a, "dtype");
  a = valid();
  a.head_dim = 96;
  expect_rejected(a, "head_dim 96");
  a = valid();
  a.kv_len = 0;
  expect_rejected(a, "kv_len=0");
  a = valid();
  a.scale = -1.0f;
  expect_rejected(a, "scale");
  a = valid();
  a.k = static_cast<unsigned char*>(fake_) + 2;
  expect_rejected(a, "k is not 16-byte aligned");
  a = valid();
  a.v = nullptr;
  expect_rejected(a, "v is null");
  a = valid();
  a.q_strides.col = 2;
  expect_rejected(a, "q channel stride");
  a = valid();
  a.out_strides.row = 100;
  expect_rejected(a, "out strides");
}

TEST_F(CudaAttentionArguments, EmptyProblemDoesNothing) {
  CudaAttentionArgs a = valid();
  a.q_len = 0;
  EXPECT_NO_THROW(cuda_attention(a, nullptr));
}

}  // namespace
}  // namespace ebb

#endif
