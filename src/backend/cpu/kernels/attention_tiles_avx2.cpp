// AVX2/FMA tile steps. Register tiles cover kQueryGroup = 16 query rows (two vectors) by six
// keys (scores) or six channels (accumulate): twelve accumulators, which with the two loaded
// vectors and one broadcast fill the sixteen ymm registers. The loops over a register tile are
// unrolled by pragma: unrolled late, gcc keeps a spilled copy of the accumulator array.
#include "backend/cpu/kernels/attention_tiles.h"

#if defined(__x86_64__)
#include <algorithm>
#include <limits>

#include "backend/cpu/kernels/vector_math_avx2.h"

namespace ebb::cpu::attention_tiles {
namespace {

constexpr int kTileKeys = 6;
constexpr int kTileChannels = 6;
static_assert(kQueryGroup == 16, "register tiles are two 8-float vectors wide");

// s[jj][0..16) = Σ_d qt[d][0..16) · kt[jj][d] for KEYS keys, d < dim.
template <int KEYS>
EBB_AVX2 void score_tile(float* s, const float* qt, const float* kt, int64_t k_stride,
                         int64_t dim) {
  __m256 acc[KEYS][2];
  const float* kp[KEYS];
#pragma GCC unroll 8
  for (int jj = 0; jj < KEYS; ++jj) {
    acc[jj][0] = _mm256_setzero_ps();
    acc[jj][1] = _mm256_setzero_ps();
    kp[jj] = kt + jj * k_stride;
  }
  for (int64_t d = 0; d < dim; ++d, qt += kPanelStride) {
    const __m256 q0 = _mm256_loadu_ps(qt);
    const __m256 q1 = _mm256_loadu_ps(qt + 8);
#pragma GCC unroll 8
    for (int jj = 0; jj < KEYS; ++jj) {
      const __m256 kb = _mm256_broadcast_ss(kp[jj] + d);
      acc[jj][0] = _mm256_fmadd_ps(kb, q0, acc[jj][0]);
      acc[jj][1] = _mm256_fmadd_ps(kb, q1, acc[jj][1]);
    }
  }
#pragma GCC unroll 8
  for (int jj = 0; jj < KEYS; ++jj) {
    _mm256_storeu_ps(s + jj * kPanelStride, acc[jj][0]);
    _mm256_storeu_ps(s + jj * kPanelStride + 8, acc[jj][1]);
  }
}

using ScoreTileFn = void (*)(float*, const float*, const float*, int64_t, int64_t);
// Indexed by the number of keys in the register tile.
constexpr ScoreTileFn kScoreTiles[kTileKeys + 1] = {nullptr,       score_tile<1>, score_tile<2>,
                                                    score_tile<3>, score_tile<4>, score_tile<5>,
                                                    score_tile<6>};

// Keys outermost: a register tile's keys stay in L1 while every query group uses them.
EBB_AVX2 void scores(float* s, const float* qt, const float* kt, int64_t k_stride, int64_t keys,
                     int64_t dim, int64_t rows) {
  for (int64_t j0 = 0; j0 < keys; j0 += kTileKeys) {
    const ScoreTileFn tile = kScoreTiles[std::min<int64_t>(kTileKeys, keys - j0)];
    for (int64_t i0 = 0; i0 < rows; i0 += kQueryGroup)
      tile(s + j0 * kPanelStride + i0, qt + i0, kt + j0 * k_stride, k_stride, dim);
  }
}

// One group of 16 query rows (two vectors, two independent sums) at a time.
EBB_AVX2 void softmax_step(float* s, float* m, float* l, float* alpha, int64_t keys, int64_t rows) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t i = 0; i < rows; i += kQueryGroup) {
    __m256 max0 = neg_inf, max1 = neg_inf;
    for (int64_t j = 0; j < keys; ++j) {
      max0 = _mm256_max_ps(max0, _mm256_loadu_ps(s + j * kPanelStride + i));
      max1 = _mm256_max_ps(max1, _mm256_loadu_ps(s + j * kPanelStride + i + 8));
    }
    const __m256 old0 = _mm256_loadu_ps(m + i), old1 = _mm256_loadu_ps(m + i + 8);
    const __m256 new0 = _mm256_max_ps(old0, max0), new1 = _mm256_max_ps(old1, max1);
    // Until a row sees a finite score, subtracting 0 keeps -inf - max from becoming NaN.
    const __m256 base0 = _mm256_blendv_ps(new0, zero, _mm256_cmp_ps(new0, neg_inf, _CMP_EQ_OQ));
    const __m256 base1 = _mm256_blendv_ps(new1, zero, _mm256_cmp_ps(new1, neg_inf, _CMP_EQ_OQ));
    __m256 sum0 = zero, sum1 = zero;
    for (int64_t j = 0; j < keys; ++j) {
      float* sj = s + j * kPanelStride + i;
      const __m256 p0 = avx2::exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(sj), base0));
      const __m256 p1 = avx2::exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(sj + 8), base1));
      _mm256_storeu_ps(sj, p0);
      _mm256_storeu_ps(sj + 8, p1);
      sum0 = _mm256_add_ps(sum0, p0);
      sum1 = _mm256_add_ps(sum1, p1);
    }
    const __m256 a0 = avx2::exp2_nonpositive(_mm256_sub_ps(old0, base0));
    const __m256 a1 = avx2::exp2_nonpositive(_mm256_sub_ps(old1, base1));
    _mm256_storeu_ps(alpha + i, a0);
    _mm256_storeu_ps(alpha + i + 8, a1);
    _mm256_storeu_ps(l + i, _mm256_fmadd_ps(_mm256_loadu_ps(l + i), a0, sum0));
    _mm256_storeu_ps(l + i + 8, _mm256_fmadd_ps(_mm256_loadu_ps(l + i + 8), a1, sum1));
    _mm256_storeu_ps(m + i, new0);
    _mm256_storeu_ps(m + i + 8, new1);
  }
}

// ot[dd][0..16) for CHANNELS channels: rescale by alpha, then add p·v over the tile's keys.
template <int CHANNELS>
EBB_AVX2 void accumulate_tile(float* ot, const float* p, const float* alpha, const float* v,
                              int64_t v_stride, int64_t keys) {
  const __m256 a0 = _mm256_loadu_ps(alpha);
  const __m256 a1 = _mm256_loadu_ps(alpha + 8);
  __m256 acc[CHANNELS][2];
#pragma GCC unroll 8
  for (int dd = 0; dd < CHANNELS; ++dd) {
    acc[dd][0] = _mm256_mul_ps(_mm256_loadu_ps(ot + dd * kPanelStride), a0);
    acc[dd][1] = _mm256_mul_ps(_mm256_loadu_ps(ot + dd * kPanelStride + 8), a1);
  }
  for (int64_t j = 0; j < keys; ++j, p += kPanelStride, v += v_stride) {
    const __m256 p0 = _mm256_loadu_ps(p);
    const __m256 p1 = _mm256_loadu_ps(p + 8);
#pragma GCC unroll 8
    for (int dd = 0; dd < CHANNELS; ++dd) {
      const __m256 vb = _mm256_broadcast_ss(v + dd);
      acc[dd][0] = _mm256_fmadd_ps(vb, p0, acc[dd][0]);
      acc[dd][1] = _mm256_fmadd_ps(vb, p1, acc[dd][1]);
    }
  }
#pragma GCC unroll 8
  for (int dd = 0; dd < CHANNELS; ++dd) {
    _mm256_storeu_ps(ot + dd * kPanelStride, acc[dd][0]);
    _mm256_storeu_ps(ot + dd * kPanelStride + 8, acc[dd][1]);
  }
}

using AccumulateTileFn = void (*)(float*, const float*, const float*, const float*, int64_t,
                                  int64_t);
// Indexed by the number of channels in the register tile.
constexpr AccumulateTileFn kAccumulateTiles[kTileChannels + 1] = {nullptr,
                                                                  accumulate_tile<1>,
                                                                  accumulate_tile<2>,
                                                                  accumulate_tile<3>,
                                                                  accumulate_tile<4>,
                                                                  accumulate_tile<5>,
                                                                  accumulate_tile<6>};

// Channels outermost: the few values of each key a channel group reads stay in L1 while every
// query group uses them, which matters once the value tile outgrows L1 (large head_dim).
EBB_AVX2 void accumulate(float* ot, const float* p, const float* alpha, const float* vt,
                         int64_t v_stride, int64_t keys, int64_t dim, int64_t rows) {
  for (int64_t d0 = 0; d0 < dim; d0 += kTileChannels) {
    const AccumulateTileFn tile = kAccumulateTiles[std::min<int64_t>(kTileChannels, dim - d0)];
    for (int64_t i0 = 0; i0 < rows; i0 += kQueryGroup)
      tile(ot + d0 * kPanelStride + i0, p + i0, alpha + i0, vt + d0, v_stride, keys);
  }
}

}  // namespace

const Ops& avx2_ops() {
  static const Ops ops{scores, softmax_step, accumulate};
  return ops;
}

}  // namespace ebb::cpu::attention_tiles

#else

namespace ebb::cpu::attention_tiles {
// Never selected off x86 (isa_supported() says so); the portable steps keep the table valid.
const Ops& avx2_ops() {
  return portable_ops();
}
}  // namespace ebb::cpu::attention_tiles

#endif
