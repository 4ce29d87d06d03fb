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
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/attention.h"
#include "core/error.h"
#include "support/cuda_test_support.h"
#include "tensor/float_convert.h"

namespace ebb {
namespace {

using test::cuda_check;
using test::device_present;
using test::DeviceBuffer;

constexpr uint16_t kPoison = 0xFFFF;  // NaN in f16 and in bf16

float decode(uint16_t bits, DType t) {
  return t == DType::BF16 ? bf16_to_f32(bits) : f16_to_f32(bits);
}

uint16_t encode(float x, DType t) {
  return t == DType::BF16 ? f32_to_bf16(x) : f32_to_f16(x);
}

// splitmix64: fast, and the same values on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * 0x1p-23f - 1.0f; }  // [-1, 1)

 private:
  uint64_t state_;
};

enum class Layout { Bhld, Blhd, BlhdPadded };

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Bhld:
      return "BHLD";
    case Layout::Blhd:
      return "BLHD";
    case Layout::BlhdPadded:
      return "BLHD+gap";
  }
  return "?";
}

struct Shape {
  int64_t batch, heads, q_len, kv_len, head_dim;
};

// A tensor [batch, heads, len, dim] laid out in memory as `layout`; the padded layout leaves 8
// unused elements after every token row.
struct Placement {
  cpu::Strides4 strides;
  size_t elems;
};

Placement place(Layout layout, int64_t batch, int64_t heads, int64_t len, int64_t dim) {
  if (layout == Layout::Bhld)
    return {cpu::bhld_strides(heads, len, dim), size_t(batch * heads * len * dim)};
  const int64_t row = heads * dim + (layout == Layout::BlhdPadded ? 8 : 0);
  return {{len * row, dim, row, 1}, size_t(batch * len * row)};
}

// Values in logical [batch, heads, len, dim] order, and the same scattered into a placement
// whose gaps hold the poison.
struct HostTensor {
  int64_t batch, heads, len, dim;
  std::vector<uint16_t> logical;
  Placement placement;
  std::vector<uint16_t> placed;

  size_t offset(int64_t b, int64_t h, int64_t l) const {
    const cpu::Strides4& s = placement.strides;
    return size_t(b * s.batch + h * s.head + l * s.row);
  }
  size_t logical_offset(int64_t b, int64_t h, int64_t l) const {
    return size_t(((b * heads + h) * len + l) * dim);
  }
};

HostTensor random_tensor(int64_t batch, int64_t heads, int64_t len, int64_t dim, Layout layout,
                         float amplitude, DType t, uint64_t seed) {
  HostTensor x{batch, heads, len, dim, {}, place(layout, batch, heads, len, dim), {}};
  Rng rng(seed);
  x.logical.resize(size_t(batch * heads * len * dim));
  for (auto& v : x.logical) v = encode(amplitude * rng.uniform(), t);
  x.placed.assign(x.placement.elems, kPoison);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t l = 0; l < len; ++l)
        std::memcpy(&x.placed[x.offset(b, h, l)], &x.logical[x.logical_offset(b, h, l)], dim * 2);
  return x;
}

// One problem: inputs on host and device, an output buffer, and the arguments.
struct Problem {
  DType dtype;
  Shape shape;
  Layout layout;
  HostTensor q, k, v;
  Placement out_placement;
  std::optional<float> scale;
};

Problem make_problem(const Shape& s, DType t, Layout layout, std::optional<float> scale,
                     uint64_t seed) {
  // Queries 8x larger than keys give scores of standard deviation about 2.7 with the default
  // scale: softmaxes from nearly one-hot to broad, not the uniform average that small scores
  // give (which would hide errors).
  return {t,
          s,
          layout,
          random_tensor(s.batch, s.heads, s.q_len, s.head_dim, layout, 8.0f, t, seed),
          random_tensor(s.batch, s.heads, s.kv_len, s.head_dim, layout, 1.0f, t, seed + 1),
          random_tensor(s.batch, s.heads, s.kv_len, s.head_dim, layout, 1.0f, t, seed + 2),
          place(layout, s.batch, s.heads, s.q_len, s.head_dim),
          scale};
}

struct DeviceProblem {
  DeviceBuffer q, k, v, out;
  CudaAttentionArgs args;

  explicit DeviceProblem(const Problem& p)
      : q(p.q.placed.size() * 2),
        k(p.k.placed.size() * 2),
        v(p.v.placed.size() * 2),
        out(p.out_placement.elems * 2) {
    cuda_check(cudaMemcpy(q.get<uint16_t>(), p.q.placed.data(), p.q.placed.size() * 2,
                          cudaMemcpyHostToDevice),
               "cudaMemcpy q");
    cuda_check(cudaMemcpy(k.get<uint16_t>(), p.k.placed.data(), p.k.placed.size() * 2,
                          cudaMemcpyHostToDevice),
               "cudaMemcpy k");
    cuda_check(cudaMemcpy(v.get<uint16_t>(), p.v.placed.data(), p.v.placed.size() * 2,
                          cudaMemcpyHostToDevice),
               "cudaMemcpy v");
    args.dtype = p.dtype;
    args.batch = p.shape.batch;
    args.heads = p.shape.heads;
    args.q_len = p.shape.q_len;
    args.kv_len = p.shape.kv_len;
    args.head_dim = p.shape.head_dim;
    args.q = q.get<uint16_t>();
    args.q_strides = p.q.placement.strides;
    args.k = k.get<uint16_t>();
    args.k_strides = p.k.placement.strides;
    args.v = v.get<uint16_t>();
    args.v_strides = p.v.placement.strides;
    args.out = out.get<uint16_t>();
    args.out_strides = p.out_placement.strides;
    args.scale = p.scale;
  }
};

// Poisons the output, runs, and returns the whole output buffer, gaps included.
std::vector<uint16_t> run(DeviceProblem& d, size_t out_elems, cudaStream_t stream) {
  cuda_check(cudaMemsetAsync(d.out.get<uint16_t>(), 0xFF, out_elems * 2, stream),
             "cudaMemsetAsync");
  cuda_attention(d.args, stream);
  cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  std::vector<uint16_t> out(out_elems);
  cuda_check(cudaMemcpy(out.data(), d.out.get<uint16_t>(), out_elems * 2, cudaMemcpyDeviceToHost),
             "cudaMemcpy out");
  return out;
}

// The query rows checked against the reference in each (batch, head): all of them for short
// sequences; otherwise the first and last rows, rows on either side of the block boundaries
// every tiling has (multiples of 32, 64 and 128), and random rows, 64 in all.
std::vector<int64_t> checked_rows(int64_t q_len, uint64_t seed) {
  std::vector<int64_t> rows;
  if (q_len <= 256) {
    for (int64_t i = 0; i < q_len; ++i) rows.push_back(i);
    return rows;
  }
  for (const int64_t i : {int64_t{0}, int64_t{1}, int64_t{31}, int64_t{32}, int64_t{63},
                          int64_t{64}, int64_t{127}, int64_t{128}, q_len - 2, q_len - 1})
    rows.push_back(i);
  Rng rng(seed);
  while (rows.size() < 64) rows.push_back(int64_t(rng.next() % uint64_t(q_len)));
  return rows;
}

struct Check {
  double max_error = 0;    // over checked elements, relative to the largest |v| of the head
  int64_t non_finite = 0;  // valid outputs that are NaN or infinite (left unwritten, or wrong)
  int64_t gap_writes = 0;  // elements between rows that were overwritten
};

// Reference row i of head (b, h), in float64 from the rounded inputs.
void reference_row(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
                   const std::vector<float>& v, int64_t b, int64_t h, int64_t i,
                   std::vector<double>& scores, std::vector<double>& out) {
  const int64_t dim = p.shape.head_dim, kv_len = p.shape.kv_len;
  const double scale = p.scale ? *p.scale : 1.0 / std::sqrt(double(dim));
  const float* qi = &q[p.q.logical_offset(b, h, i)];
  double max_score = -INFINITY;
  for (int64_t j = 0; j < kv_len; ++j) {
    const float* kj = &k[p.k.logical_offset(b, h, j)];
    double dot = 0;
    for (int64_t c = 0; c < dim; ++c) dot += double(qi[c]) * kj[c];
    scores[j] = dot * scale;
    max_score = std::max(max_score, scores[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < kv_len; ++j) sum += (scores[j] = std::exp(scores[j] - max_score));
  std::fill(out.begin(), out.end(), 0.0);
  for (int64_t j = 0; j < kv_len; ++j) {
    const float* vj = &v[p.v.logical_offset(b, h, j)];
    for (int64_t c = 0; c < dim; ++c) out[c] += scores[j] * vj[c];
  }
  for (auto& o : out) o /= sum;
}

std::vector<float> decoded(const HostTensor& x, DType t) {
  std::vector<float> f(x.logical.size());
  for (size_t i = 0; i < f.size(); ++i) f[i] = decode(x.logical[i], t);
  return f;
}

Check check_output(const Problem& p, const std::vector<uint16_t>& out) {
  const Shape& s = p.shape;
  Check result;
  // Every valid element finite, every gap element still poison.
  std::vector<bool> valid(out.size(), false);
  const HostTensor layout_of_out{s.batch, s.heads, s.q_len, s.head_dim, {}, p.out_placement, {}};
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.q_len; ++i) {
        const size_t at = layout_of_out.offset(b, h, i);
        for (int64_t c = 0; c < s.head_dim; ++c) {
          valid[at + c] = true;
          if (!std::isfinite(decode(out[at + c], p.dtype))) ++result.non_finite;
        }
      }
  for (size_t e = 0; e < out.size(); ++e)
    if (!valid[e] && out[e] != kPoison) ++result.gap_writes;

  const std::vector<float> q = decoded(p.q, p.dtype), k = decoded(p.k, p.dtype),
                           v = decoded(p.v, p.dtype);
  struct Item {
    int64_t b, h, i;
  };
  std::vector<Item> items;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (const int64_t i : checked_rows(s.q_len, uint64_t(b * s.heads + h)))
        items.push_back({b, h, i});
  std::vector<double> head_scale(size_t(s.batch * s.heads), 0.0);
  for (int64_t bh = 0; bh < s.batch * s.heads; ++bh)
    for (size_t e = 0; e < size_t(s.kv_len * s.head_dim); ++e)
      head_scale[bh] =
          std::max(head_scale[bh], double(std::abs(v[bh * s.kv_len * s.head_dim + e])));

  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<double> worst(threads, 0.0);
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < threads; ++w)
    pool.emplace_back([&, w] {
      std::vector<double> scores(size_t(s.kv_len)), ref(size_t(s.head_dim));
      for (size_t n = w; n < items.size(); n += threads) {
        const Item& it = items[n];
        reference_row(p, q, k, v, it.b, it.h, it.i, scores, ref);
        const size_t at = layout_of_out.offset(it.b, it.h, it.i);
        const double norm = std::max(head_scale[it.b * s.heads + it.h], 1e-30);
        for (int64_t c = 0; c < s.head_dim; ++c) {
          const double err = std::abs(double(decode(out[at + c], p.dtype)) - ref[c]) / norm;
          // NaN compares false: count it as an infinite error.
          worst[w] = std::max(worst[w], err <= 1e300 ? err : INFINITY);
        }
      }
    });
  for (auto& t : pool) t.join();
  result.max_error = *std::max_element(worst.begin(), worst.end());
  return result;
}

// Error bounds, relative to the largest |v| of the head. With u the unit roundoff of the input
// type (bf16 2^-8, f16 2^-11), the kernel rounds the softmax weights to the input type before
// the value product (at most u·max|v| of error, as the weights sum to the denominator) and
// rounds the output (at most u·|out| <= u·max|v|): 2u in all, 0.0078 for bf16 and 0.00098 for
// f16. f16 adds the weights below 2^-14 that become subnormal (absolute error 2^-25 each, at
// most kv_len·2^-25 <= 0.0005 for 16384 keys, over a denominator >= 1). f32 accumulation and
// the hardware exp2 add ~1e-5. The tolerances keep some margin above these bounds.
double tolerance(DType t) {
  return t == DType::BF16 ? 1e-2 : 2e-3;
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

struct NamedShape {
  const char* name;
  Shape shape;
};

// Batch 2: the conditional and unconditional halves of classifier-free guidance.
constexpr NamedShape kModelShapes[] = {
    {"sd1 self 512px", {2, 8, 4096, 4096, 40}},  {"sd1 self 1024px", {2, 8, 16384, 16384, 40}},
    {"sd1 cross", {2, 8, 4096, 77, 40}},         {"sd1 self 512px", {2, 8, 1024, 1024, 80}},
    {"sd1 self 1024px", {2, 8, 4096, 4096, 80}}, {"sd1 cross", {2, 8, 1024, 77, 80}},
    {"sd1 self 512px", {2, 8, 256, 256, 160}},   {"sd1 self 1024px", {2, 8, 1024, 1024, 160}},
    {"sd1 cross", {2, 8, 256, 77, 160}},         {"sdxl self", {2, 10, 4096, 4096, 64}},
    {"sdxl self", {2, 20, 1024, 1024, 64}},      {"sdxl cross", {2, 10, 4096, 77, 64}},
    {"sdxl cross 154", {2, 20, 1024, 154, 64}},  {"flux joint", {1, 24, 4608, 4608, 128}},
    {"vae 512px", {1, 1, 4096, 4096, 512}},      {"vae 1024px", {1, 1, 16384, 16384, 512}},
};

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
