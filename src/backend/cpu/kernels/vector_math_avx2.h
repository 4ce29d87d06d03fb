#pragma once
// 8-wide f32 math for the AVX2 kernels. Only translation units that check the processor
// first (see isa.h) may call these. Every function carries the target attribute rather than
// the whole file being built with -mavx2, so no inline function shared with portable code is
// ever emitted with AVX2 instructions.
//
// Accuracy, as vector_math_avx2_test measures it against double precision: see the bounds
// asserted there.
#include <immintrin.h>

#include <cstdint>

#define EBB_AVX2 __attribute__((target("avx2,fma")))

namespace ebb::cpu::avx2 {

// e^x. Results below the smallest normal float are flushed to 0 (so exp(-inf) = 0), results
// above the largest float are +inf, NaN stays NaN.
EBB_AVX2 inline __m256 exp(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);  // ln(FLT_MIN)
  const __m256 hi = _mm256_set1_ps(88.72283f);   // ln(FLT_MAX)
  // max/min with the constant first return x when x is NaN.
  const __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
  // x = n·ln2 + r with |r| <= ln2/2; ln2 is split so that n·ln2_hi is exact.
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606820309417e-06f), r);
  // Taylor series of e^r to degree 7: the truncation error is below 6e-9 on |r| <= ln2/2.
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // n reaches 128 at the top of the range, past the largest float exponent: scale by 2^n in
  // two halves, each a normal float.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  result = _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), result);
  return _mm256_blendv_ps(result, _mm256_set1_ps(__builtin_inff()),
                          _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
}

// 2^x for x <= 0, the weights of a softmax taken in base 2: relative error below 1e-7,
// results under 2^-126 flushed to 0 (so 2^-inf = 0), NaN stays NaN. Positive x is outside
// the domain.
EBB_AVX2 inline __m256 exp2_nonpositive(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-126.0f);
  const __m256 xc = _mm256_max_ps(lo, x);  // returns x when x is NaN
  const __m256 n = _mm256_round_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(xc, n);  // exact, in [-1/2, 1/2]
  // 2^f: least-squares fit of relative error at Chebyshev nodes, degree 6.
  __m256 p = _mm256_set1_ps(0.00015337577497120947f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.0013399859890341759f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.009618519805371761f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.05550329014658928f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.24022646248340607f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.6931471824645996f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), result);
}

// 1 / (1 + e^-x)
EBB_AVX2 inline __m256 sigmoid(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// Φ(x) = (1 + erf(x/√2)) / 2, the standard normal CDF, with z = |x|/√2. Below z = 0.6, erf
// comes from an odd polynomial; from there on, erfc(z) = e^(-z²)·g(1/(1+z)) with g a
// polynomial, so Φ of negative x (= erfc/2) keeps its relative accuracy far into the tail.
// Both polynomials are least-squares fits of relative error at Chebyshev nodes: degree 5 in
// z² on [0, 0.6], degree 8 in 1/(1+z) on [0.6, 9.5] (past 9.5, Φ(-x) is below FLT_MIN).
EBB_AVX2 inline __m256 normal_cdf(__m256 x_in) {
  // Φ is exactly 0 or 1 in float well before ±20; clamping keeps x² finite (NaN passes).
  const __m256 x =
      _mm256_min_ps(_mm256_set1_ps(20.0f), _mm256_max_ps(_mm256_set1_ps(-20.0f), x_in));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x),
                                 _mm256_set1_ps(0.70710678118654752f));
  // z² = x²/2 straight from x, with its rounding error recovered exactly by an fma: rounding
  // z first would cost e^(-z²) a relative error of 2z²·2^-24, 1e-5 far in the tail.
  const __m256 x2 = _mm256_mul_ps(x, x);
  const __m256 z2 = _mm256_mul_ps(half, x2);
  const __m256 z2_err = _mm256_mul_ps(half, _mm256_fmsub_ps(x, x, x2));

  __m256 a = _mm256_set1_ps(-0.0007202475098893046f);
  a = _mm256_fmadd_ps(a, z2, _mm256_set1_ps(0.0051645562052726746f));
  a = _mm256_fmadd_ps(a, z2, _mm256_set1_ps(-0.026854228228330612f));
  a = _mm256_fmadd_ps(a, z2, _mm256_set1_ps(0.11283690482378006f));
  a = _mm256_fmadd_ps(a, z2, _mm256_set1_ps(-0.37612634897232056f));
  a = _mm256_fmadd_ps(a, z2, _mm256_set1_ps(1.128379225730896f));
  const __m256 erf_small = _mm256_mul_ps(a, z);

  const __m256 t = _mm256_div_ps(one, _mm256_add_ps(one, z));
  __m256 g = _mm256_set1_ps(0.8163084983825684f);
  g = _mm256_fmadd_ps(g, t, _mm256_set1_ps(-2.902672052383423f));
  g = _mm256_fmadd_ps(g, t, _mm256_set1_ps(4.107468605041504f));
  g = _mm256_fmadd_ps(g, t, _mm256_set1_ps(-2.5505385398864746f));
  g = _mm256_fmadd_ps(g, t, _mm256_set1_ps(0.19237615168094635f));
  g = _mm256_fmadd_ps(g, t, _mm256_set1_ps(0.20617589354515076f));
  g = _mm256_fmadd_ps(g, t, _mm256_set1_ps(0.5715931057929993f));
  g = _mm256_fmadd_ps(g, t, _mm256_set1_ps(0.5637881755828857f));
  g = _mm256_fmadd_ps(g, t, _mm256_set1_ps(9.237506674253382e-06f));
  // e^(-z²) with the rounding error of z² applied to first order.
  const __m256 gauss =
      _mm256_mul_ps(exp(_mm256_sub_ps(_mm256_setzero_ps(), z2)), _mm256_sub_ps(one, z2_err));
  const __m256 half_erfc = _mm256_mul_ps(half, _mm256_mul_ps(gauss, g));

  // Φ(x) = 1/2 ± erf(z)/2; with the complement, Φ = 1 - erfc/2 for x >= 0 and erfc/2 below.
  const __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 half_erf = _mm256_mul_ps(half, erf_small);
  const __m256 small =
      _mm256_blendv_ps(_mm256_add_ps(half, half_erf), _mm256_sub_ps(half, half_erf), negative);
  const __m256 big = _mm256_blendv_ps(_mm256_sub_ps(one, half_erfc), half_erfc, negative);
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(z, _mm256_set1_ps(0.6f), _CMP_LT_OQ));
}

// x·Φ(x): GELU as torch computes it by default (approximate="none").
EBB_AVX2 inline __m256 gelu_erf(__m256 x) {
  return _mm256_mul_ps(x, normal_cdf(x));
}

// x/2·(1 + tanh(√(2/π)·(x + 0.044715x³))), written as x·sigmoid(2u) which equals it and has
// no cancellation near u = 0.
EBB_AVX2 inline __m256 gelu_tanh(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 inner = _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x);
  const __m256 two_u = _mm256_mul_ps(inner, _mm256_set1_ps(2.0f * 0.7978845608028654f));
  return _mm256_mul_ps(x, sigmoid(two_u));
}

// Sum of the 8 lanes, always added in the same order.
EBB_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

EBB_AVX2 inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace ebb::cpu::avx2
