#pragma once
// The reference side of the GPU attention tests (attention_gputest, cudnn_attention_gputest):
// random f16/bf16 problems in several layouts with poisoned gaps, a float64 reference over
// sampled query rows, and the error bounds. Include only where EBB_HAVE_CUDA is defined.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "backend/cuda/attention.h"
#include "support/cuda_test_support.h"
#include "tensor/float_convert.h"

namespace ebb::attention_test {

using test::cuda_check;
using test::DeviceBuffer;

constexpr uint16_t kPoison = 0xFFFF;  // NaN in f16 and in bf16

inline float decode(uint16_t bits, DType t) {
  return t == DType::BF16 ? bf16_to_f32(bits) : f16_to_f32(bits);
}

inline uint16_t encode(float x, DType t) {
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

inline const char* layout_name(Layout l) {
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

struct NamedShape {
  const char* name;
  Shape shape;
};

// Every attention shape of the models (the attention bench's); batch 2 is classifier-free
// guidance's two halves.
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

// A tensor [batch, heads, len, dim] laid out in memory as `layout`; the padded layout leaves 8
// unused elements after every token row.
struct Placement {
  cpu::Strides4 strides;
  size_t elems;
};

inline Placement place(Layout layout, int64_t batch, int64_t heads, int64_t len, int64_t dim) {
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

inline HostTensor random_tensor(int64_t batch, int64_t heads, int64_t len, int64_t dim,
                                Layout layout, float amplitude, DType t, uint64_t seed) {
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

inline Problem make_problem(const Shape& s, DType t, Layout layout, std::optional<float> scale,
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

// Poisons the output, enqueues compute(d.args, stream), and returns the whole output buffer,
// gaps included.
template <typename Compute>
std::vector<uint16_t> run_poisoned(DeviceProblem& d, size_t out_elems, cudaStream_t stream,
                                   Compute compute) {
  cuda_check(cudaMemsetAsync(d.out.get<uint16_t>(), 0xFF, out_elems * 2, stream),
             "cudaMemsetAsync");
  compute(d.args, stream);
  cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  std::vector<uint16_t> out(out_elems);
  cuda_check(cudaMemcpy(out.data(), d.out.get<uint16_t>(), out_elems * 2, cudaMemcpyDeviceToHost),
             "cudaMemcpy out");
  return out;
}

// The query rows checked against the reference in each (batch, head): all of them for short
// sequences; otherwise the first and last rows, rows on either side of the block boundaries
// every tiling has (multiples of 32, 64 and 128), and random rows, 64 in all.
inline std::vector<int64_t> checked_rows(int64_t q_len, uint64_t seed) {
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
inline void reference_row(const Problem& p, const std::vector<float>& q,
                          const std::vector<float>& k, const std::vector<float>& v, int64_t b,
                          int64_t h, int64_t i, std::vector<double>& scores,
                          std::vector<double>& out) {
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

inline std::vector<float> decoded(const HostTensor& x, DType t) {
  std::vector<float> f(x.logical.size());
  for (size_t i = 0; i < f.size(); ++i) f[i] = decode(x.logical[i], t);
  return f;
}

inline Check check_output(const Problem& p, const std::vector<uint16_t>& out) {
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
inline double tolerance(DType t) {
  return t == DType::BF16 ? 1e-2 : 2e-3;
}

}  // namespace ebb::attention_test
