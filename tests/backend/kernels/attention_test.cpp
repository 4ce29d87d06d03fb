#include "backend/cpu/kernels/attention.h"

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

constexpr float kInf = std::numeric_limits<float>::infinity();

enum class Layout {
  Bhld,  // torch's [B, H, L, D]
  Blhd,  // [B, L, H, D], as a projection writes it
  Bhdl,  // [B, H, D, L]: channels not contiguous
};

// Owns inputs for one attention call and the strides that view them.
struct Problem {
  AttentionShape shape;
  Layout layout = Layout::Bhld;
  std::vector<float> q, k, v, mask;
  Strides4 mask_strides;
  std::optional<float> scale;

  Strides4 strides(int64_t len) const {
    const int64_t h = shape.heads, d = shape.head_dim;
    switch (layout) {
      case Layout::Blhd:
        return blhd_strides(h, len, d);
      case Layout::Bhdl:
        return {h * d * len, d * len, 1, len};
      default:
        return bhld_strides(h, len, d);
    }
  }
  size_t out_size() const { return shape.batch * shape.heads * shape.q_len * shape.head_dim; }

  AttentionArgs args(const float* qp, const float* kp, const float* vp, float* out) const {
    AttentionArgs a;
    a.shape = shape;
    a.q = qp;
    a.q_strides = strides(shape.q_len);
    a.k = kp;
    a.k_strides = strides(shape.kv_len);
    a.v = vp;
    a.v_strides = strides(shape.kv_len);
    a.out = out;
    a.out_strides = strides(shape.q_len);
    a.mask = mask.empty() ? nullptr : mask.data();
    a.mask_strides = mask_strides;
    a.scale = scale;
    return a;
  }
};

Problem make_problem(AttentionShape shape, uint32_t seed, Layout layout = Layout::Bhld) {
  Problem p{shape, layout};
  p.q = random_floats(shape.batch * shape.heads * shape.q_len * shape.head_dim, seed, -2, 2);
  p.k = random_floats(shape.batch * shape.heads * shape.kv_len * shape.head_dim, seed + 1, -2, 2);
  p.v = random_floats(shape.batch * shape.heads * shape.kv_len * shape.head_dim, seed + 2);
  return p;
}

// Output row (b, h, i) computed in double with the whole score row at hand.
std::vector<double> naive_row(const Problem& p, int64_t b, int64_t h, int64_t i) {
  const AttentionShape& s = p.shape;
  const Strides4 qs = p.strides(s.q_len), ks = p.strides(s.kv_len);
  const double scale = p.scale ? *p.scale : 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  std::vector<double> score(s.kv_len);
  double max = -kInf;
  for (int64_t j = 0; j < s.kv_len; ++j) {
    double dot = 0;
    for (int64_t d = 0; d < s.head_dim; ++d)
      dot += static_cast<double>(p.q[b * qs.batch + h * qs.head + i * qs.row + d * qs.col]) *
             p.k[b * ks.batch + h * ks.head + j * ks.row + d * ks.col];
    score[j] = dot * scale;
    if (!p.mask.empty()) {
      const Strides4& m = p.mask_strides;
      score[j] += p.mask[b * m.batch + h * m.head + i * m.row + j * m.col];
    }
    max = std::max(max, score[j]);
  }
  std::vector<double> out(s.head_dim, 0.0);
  if (max == -kInf) return out;  // every key masked: the kernel's documented zeros
  double sum = 0;
  for (int64_t j = 0; j < s.kv_len; ++j) {
    const double e = std::exp(score[j] - max);
    sum += e;
    for (int64_t d = 0; d < s.head_dim; ++d)
      out[d] += e * p.v[b * ks.batch + h * ks.head + j * ks.row + d * ks.col];
  }
  for (auto& x : out) x /= sum;
  return out;
}

std::vector<float> run(const Problem& p, ThreadPool& pool, Isa isa) {
  std::vector<float> out(p.out_size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<std::byte> scratch(attention_scratch_bytes(p.shape, pool.size()));
  attention(p.args(p.q.data(), p.k.data(), p.v.data(), out.data()), scratch, pool, isa);
  return out;
}

// Compares the given rows (every row when `rows` is empty) with naive_row.
void expect_matches_naive(const Problem& p, const std::vector<float>& out,
                          std::vector<int64_t> rows = {}) {
  const AttentionShape& s = p.shape;
  if (rows.empty())
    for (int64_t i = 0; i < s.q_len; ++i) rows.push_back(i);
  const Strides4 os = p.strides(s.q_len);
  std::vector<float> got;
  std::vector<double> want;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i : rows) {
        auto ref = naive_row(p, b, h, i);
        want.insert(want.end(), ref.begin(), ref.end());
        for (int64_t d = 0; d < s.head_dim; ++d)
          got.push_back(out[b * os.batch + h * os.head + i * os.row + d * os.col]);
      }
  EXPECT_LE(relative_error(got.data(), want.data(), got.size()), 1e-5)
      << "B=" << s.batch << " H=" << s.heads << " Lq=" << s.q_len << " Lkv=" << s.kv_len
      << " D=" << s.head_dim;
}

class AttentionTest : public testing::TestWithParam<Isa> {
 protected:
  ThreadPool pool_{3};
};

TEST_P(AttentionTest, MatchesNaiveOnOddShapes) {
  const AttentionShape shapes[] = {
      {1, 1, 1, 1, 1},     {2, 3, 17, 5, 7},    {1, 2, 65, 77, 40},  {1, 1, 130, 129, 13},
      {2, 2, 64, 64, 64},  {1, 1, 33, 200, 80}, {1, 1, 20, 30, 160}, {1, 1, 70, 50, 512},
      {1, 1, 3, 154, 128}, {1, 2, 1, 300, 9},
  };
  uint32_t seed = 1;
  for (const auto& shape : shapes) {
    // Bhld and Blhd with these sizes read some tiles in place and pack others; Bhdl always
    // packs (its channels are strided).
    for (Layout layout : {Layout::Bhld, Layout::Blhd, Layout::Bhdl}) {
      Problem p = make_problem(shape, seed += 3, layout);
      expect_matches_naive(p, run(p, pool_, GetParam()));
    }
  }
}

TEST_P(AttentionTest, HonoursExplicitScale) {
  Problem p = make_problem({1, 2, 40, 70, 24}, 99);
  p.scale = 0.7f;
  expect_matches_naive(p, run(p, pool_, GetParam()));
}

TEST_P(AttentionTest, AppliesBroadcastMasks) {
  const AttentionShape shape{2, 3, 70, 77, 40};
  const int64_t lq = shape.q_len, lkv = shape.kv_len;
  // Causal [Lq, Lkv] mask shared by every batch and head.
  {
    Problem p = make_problem(shape, 5);
    p.mask.assign(lq * lkv, 0.0f);
    for (int64_t i = 0; i < lq; ++i)
      for (int64_t j = i + 1; j < lkv; ++j) p.mask[i * lkv + j] = -kInf;
    p.mask_strides = {0, 0, lkv, 1};
    expect_matches_naive(p, run(p, pool_, GetParam()));
  }
  // Per-batch [B, 1, Lq, Lkv] padding mask with finite biases.
  {
    Problem p = make_problem(shape, 6, Layout::Blhd);
    p.mask = random_floats(shape.batch * lq * lkv, 7, -3, 3);
    for (int64_t i = 0; i < lq; ++i)
      for (int64_t j = 60; j < lkv; ++j) p.mask[lq * lkv + i * lkv + j] = -kInf;
    p.mask_strides = {lq * lkv, 0, lkv, 1};
    expect_matches_naive(p, run(p, pool_, GetParam()));
  }
  // Full [B, H, Lq, Lkv] mask stored transposed (keys outer) to exercise its strides.
  {
    Problem p = make_problem(shape, 8);
    p.mask = random_floats(shape.batch * shape.heads * lq * lkv, 9, -2, 2);
    p.mask_strides = {shape.heads * lq * lkv, lq * lkv, 1, lq};
    expect_matches_naive(p, run(p, pool_, GetParam()));
  }
}

TEST_P(AttentionTest, FullyMaskedRowsGiveZeros) {
  const AttentionShape shape{1, 2, 20, 150, 16};
  Problem p = make_problem(shape, 11);
  p.mask.assign(shape.q_len * shape.kv_len, 0.0f);
  for (int64_t j = 0; j < shape.kv_len; ++j) {
    p.mask[3 * shape.kv_len + j] = -kInf;               // row 3: nothing visible
    if (j < 140) p.mask[4 * shape.kv_len + j] = -kInf;  // row 4: only the last tile
    if (j >= 1) p.mask[5 * shape.kv_len + j] = -kInf;   // row 5: only key 0
  }
  p.mask_strides = {0, 0, shape.kv_len, 1};
  auto out = run(p, pool_, GetParam());
  for (int64_t h = 0; h < shape.heads; ++h)
    for (int64_t d = 0; d < shape.head_dim; ++d)
      EXPECT_EQ(out[(h * shape.q_len + 3) * shape.head_dim + d], 0.0f);
  expect_matches_naive(p, out);
}

TEST_P(AttentionTest, EmptyKeysGiveZeros) {
  Problem p = make_problem({1, 1, 5, 0, 8}, 12);
  p.k.resize(1);
  p.v.resize(1);
  for (float x : run(p, pool_, GetParam())) EXPECT_EQ(x, 0.0f);
}

TEST_P(AttentionTest, LongSequenceSampledRows) {
  Problem p = make_problem({1, 1, 4096, 4096, 40}, 13);
  expect_matches_naive(p, run(p, pool_, GetParam()), {0, 1, 63, 64, 777, 2048, 4000, 4095});
}

TEST_P(AttentionTest, CrossAttentionSampledRows) {
  Problem p = make_problem({1, 2, 4096, 77, 64}, 14, Layout::Blhd);
  expect_matches_naive(p, run(p, pool_, GetParam()), {0, 5, 1000, 4095});
}

// Same inputs at other addresses and alignments, and on pools of other sizes: the same bits.
TEST_P(AttentionTest, BitIdenticalAcrossAlignmentThreadsAndRuns) {
  // Row strides of 120 (read in place) and 128 floats (packed).
  for (int64_t dim : {40, 64}) {
    Problem p = make_problem({1, 2, 150, 133, dim}, 15, Layout::Blhd);
    p.mask = random_floats(p.shape.q_len * p.shape.kv_len, 16, -1, 1);
    p.mask_strides = {0, 0, p.shape.kv_len, 1};
    const std::vector<float> first = run(p, pool_, GetParam());
    for (int threads : {1, 2, 5}) {
      ThreadPool pool(threads);
      for (size_t shift : {1u, 3u, 7u}) {
        test::ShiftedBuffer q(p.q, shift), k(p.k, shift + 1), v(p.v, shift + 2);
        test::ShiftedBuffer out(std::vector<float>(p.out_size()), shift);
        std::vector<std::byte> scratch(attention_scratch_bytes(p.shape, threads) + 3);
        attention(p.args(q.data(), k.data(), v.data(), out.data()), std::span(scratch).subspan(3),
                  pool, GetParam());
        EXPECT_EQ(std::memcmp(out.data(), first.data(), first.size() * sizeof(float)), 0)
            << "dim " << dim << ", " << threads << " threads, shift " << shift;
      }
    }
    EXPECT_EQ(run(p, pool_, GetParam()), first);
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, AttentionTest, testing::ValuesIn(test::runnable_isas()),
                         test::isa_param_name);

TEST(AttentionScratch, StaysSmallForSd15SelfAttention) {
  const AttentionShape shape{1, 8, 4096, 4096, 40};
  EXPECT_LE(attention_scratch_bytes(shape, 64), 16u << 20);
  EXPECT_LE(attention_scratch_bytes({1, 1, 4096, 4096, 512}, 16), 16u << 20);
}

TEST(AttentionScratch, RejectsTooLittleScratch) {
  ThreadPool pool(2);
  Problem p = make_problem({1, 1, 8, 8, 8}, 17);
  std::vector<float> out(p.out_size());
  std::vector<std::byte> scratch(attention_scratch_bytes(p.shape, 2) - 1);
  EXPECT_THROW(attention(p.args(p.q.data(), p.k.data(), p.v.data(), out.data()), scratch, pool),
               Error);
}

TEST(AttentionScratch, RejectsBadShapes) {
  EXPECT_THROW(attention_scratch_bytes({1, 1, 4, 4, 0}, 1), Error);
  EXPECT_THROW(attention_scratch_bytes({1, -1, 4, 4, 8}, 1), Error);
  EXPECT_THROW(attention_scratch_bytes({1, 1, 4, 4, 8}, 0), Error);
  EXPECT_THROW(attention_scratch_bytes({1, 1, 4, 4, int64_t{1} << 61}, 1), Error);
}

}  // namespace
}  // namespace ebb::cpu
