// AVX2+FMA kernels. Each function carries the target attribute (EBB_AVX2) rather than the file
// being compiled with -mavx2, so no inline function shared with other files is built for a CPU
// the program may not run on.
#include "backend/cpu/vector_kernels.h"

#include "backend/cpu/kernels/isa.h"

#if defined(__x86_64__)
#include "backend/cpu/kernels/vector_math_avx2.h"

namespace ebb::cpu {
namespace {

// Double-precision sums of 16 floats per step in four fixed lanes-groups.
struct Acc4 {
  __m256d a, b, c, d;
};

EBB_AVX2 inline Acc4 acc_zero() {
  return {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
}

EBB_AVX2 inline double acc_total(const Acc4& acc) {
  const __m256d s = _mm256_add_pd(_mm256_add_pd(acc.a, acc.b), _mm256_add_pd(acc.c, acc.d));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, s);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

EBB_AVX2 inline __m256d low_pd(__m256 v) {
  return _mm256_cvtps_pd(_mm256_castps256_ps128(v));
}
EBB_AVX2 inline __m256d high_pd(__m256 v) {
  return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}

EBB_AVX2 double sum(const float* x, int64_t n) {
  Acc4 acc = acc_zero();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
    acc.a = _mm256_add_pd(acc.a, low_pd(u));
    acc.b = _mm256_add_pd(acc.b, high_pd(u));
    acc.c = _mm256_add_pd(acc.c, low_pd(v));
    acc.d = _mm256_add_pd(acc.d, high_pd(v));
  }
  double s = acc_total(acc);
  for (; i < n; ++i) s += x[i];
  return s;
}

EBB_AVX2 double sum_squares(const float* x, int64_t n) {
  Acc4 acc = acc_zero();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
    const __m256d p = low_pd(u), q = high_pd(u), r = low_pd(v), t = high_pd(v);
    acc.a = _mm256_fmadd_pd(p, p, acc.a);
    acc.b = _mm256_fmadd_pd(q, q, acc.b);
    acc.c = _mm256_fmadd_pd(r, r, acc.c);
    acc.d = _mm256_fmadd_pd(t, t, acc.d);
  }
  double s = acc_total(acc);
  for (; i < n; ++i) s += double(x[i]) * x[i];
  return s;
}

EBB_AVX2 double sum_squared_deviations(const float* x, int64_t n, double mean) {
  const __m256d m = _mm256_set1_pd(mean);
  Acc4 acc = acc_zero();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
    const __m256d p = _mm256_sub_pd(low_pd(u), m), q = _mm256_sub_pd(high_pd(u), m);
    const __m256d r = _mm256_sub_pd(low_pd(v), m), t = _mm256_sub_pd(high_pd(v), m);
    acc.a = _mm256_fmadd_pd(p, p, acc.a);
    acc.b = _mm256_fmadd_pd(q, q, acc.b);
    acc.c = _mm256_fmadd_pd(r, r, acc.c);
    acc.d = _mm256_fmadd_pd(t, t, acc.d);
  }
  double s = acc_total(acc);
  for (; i < n; ++i) s += (x[i] - mean) * (x[i] - mean);
  return s;
}

EBB_AVX2 void scale_shift(const float* x, float* y, int64_t n, float mean, float scale,
                          float shift) {
  const __m256 m = _mm256_set1_ps(mean), s = _mm256_set1_ps(scale), b = _mm256_set1_ps(shift);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), s, b));
  for (; i < n; ++i) y[i] = __builtin_fmaf(x[i] - mean, scale, shift);
}

EBB_AVX2 void normalize(const float* x, float* y, int64_t n, float mean, float rstd,
                        const float* gamma, const float* beta) {
  const __m256 m = _mm256_set1_ps(mean), r = _mm256_set1_ps(rstd);
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), r);
    const __m256 g = gamma ? _mm256_loadu_ps(gamma + i) : one;
    const __m256 b = beta ? _mm256_loadu_ps(beta + i) : zero;
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, g, b));
  }
  for (; i < n; ++i)
    y[i] = __builtin_fmaf((x[i] - mean) * rstd, gamma ? gamma[i] : 1.0f, beta ? beta[i] : 0.0f);
}

EBB_AVX2 inline __m256 load_or_repeat(const float* p, bool repeat, int64_t i) {
  return repeat ? _mm256_set1_ps(*p) : _mm256_loadu_ps(p + i);
}

EBB_AVX2 void add(const float* a, bool a_repeat, const float* b, bool b_repeat, float* y,
                  int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i,
                     _mm256_add_ps(load_or_repeat(a, a_repeat, i), load_or_repeat(b, b_repeat, i)));
  for (; i < n; ++i) y[i] = a[a_repeat ? 0 : i] + b[b_repeat ? 0 : i];
}

EBB_AVX2 void mul(const float* a, bool a_repeat, const float* b, bool b_repeat, float* y,
                  int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i,
                     _mm256_mul_ps(load_or_repeat(a, a_repeat, i), load_or_repeat(b, b_repeat, i)));
  for (; i < n; ++i) y[i] = a[a_repeat ? 0 : i] * b[b_repeat ? 0 : i];
}

}  // namespace

const VectorKernels* avx2_vector_kernels() {
  static const VectorKernels kernels{"avx2",      sum,       sum_squares, sum_squared_deviations,
                                     scale_shift, normalize, add,         mul};
  return isa_supported(Isa::Avx2Fma) ? &kernels : nullptr;
}

}  // namespace ebb::cpu

#else

namespace ebb::cpu {

const VectorKernels* avx2_vector_kernels() {
  return nullptr;
}

}  // namespace ebb::cpu

#endif
