// AVX2/FMA loops. A tail shorter than a vector is copied into a padded buffer and run through
// the same vector code, so no element is ever computed by a different formula.
#include "backend/cpu/kernels/pointwise_kernels.h"

#if defined(__x86_64__)
#include <algorithm>
#include <limits>

#include "backend/cpu/kernels/vector_math_avx2.h"

namespace ebb::cpu::pointwise {
namespace {

// Functors rather than lambdas: gcc does not give a lambda its enclosing function's target.
struct Silu {
  EBB_AVX2 __m256 operator()(__m256 x) const {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(x, _mm256_add_ps(one, avx2::exp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
  }
};
struct Sigmoid {
  EBB_AVX2 __m256 operator()(__m256 x) const { return avx2::sigmoid(x); }
};
struct GeluErf {
  EBB_AVX2 __m256 operator()(__m256 x) const { return avx2::gelu_erf(x); }
};
struct GeluTanh {
  EBB_AVX2 __m256 operator()(__m256 x) const { return avx2::gelu_tanh(x); }
};

template <class F>
EBB_AVX2 void map(const float* x, float* y, int64_t n) {
  const F f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float buf[8] = {};
    std::copy(x + i, x + n, buf);
    _mm256_storeu_ps(buf, f(_mm256_loadu_ps(buf)));
    std::copy(buf, buf + (n - i), y + i);
  }
}

template <class F>
EBB_AVX2 void gated(const float* hidden, const float* gate, float* y, int64_t n) {
  const F f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i,
                     _mm256_mul_ps(_mm256_loadu_ps(hidden + i), f(_mm256_loadu_ps(gate + i))));
  if (i < n) {
    float h[8] = {}, g[8] = {};
    std::copy(hidden + i, hidden + n, h);
    std::copy(gate + i, gate + n, g);
    _mm256_storeu_ps(h, _mm256_mul_ps(_mm256_loadu_ps(h), f(_mm256_loadu_ps(g))));
    std::copy(h, h + (n - i), y + i);
  }
}

// Loads x[i, i+8) with the lanes at or past n set to `fill`.
EBB_AVX2 inline __m256 load_padded(const float* x, int64_t i, int64_t n, float fill) {
  if (i + 8 <= n) return _mm256_loadu_ps(x + i);
  float buf[8];
  std::fill(buf, buf + 8, fill);
  std::copy(x + i, x + n, buf);
  return _mm256_loadu_ps(buf);
}

EBB_AVX2 void store_partial(float* y, int64_t i, int64_t n, __m256 v) {
  if (i + 8 <= n) {
    _mm256_storeu_ps(y + i, v);
    return;
  }
  float buf[8];
  _mm256_storeu_ps(buf, v);
  std::copy(buf, buf + (n - i), y + i);
}

EBB_AVX2 void softmax(const float* x, float* y, int64_t n) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  __m256 vmax = _mm256_set1_ps(neg_inf);
  for (int64_t i = 0; i < n; i += 8) vmax = _mm256_max_ps(vmax, load_padded(x, i, n, neg_inf));
  const __m256 max = _mm256_set1_ps(avx2::hmax(vmax));
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    // Padding lanes are -inf and contribute exp(-inf) = 0 to the sum.
    const __m256 e = avx2::exp(_mm256_sub_ps(load_padded(x, i, n, neg_inf), max));
    vsum = _mm256_add_ps(vsum, e);
    store_partial(y, i, n, e);
  }
  const __m256 inv = _mm256_set1_ps(1.0f / avx2::hsum(vsum));
  for (int64_t i = 0; i < n; i += 8)
    store_partial(y, i, n, _mm256_mul_ps(load_padded(y, i, n, 0), inv));
}

}  // namespace

const Kernels& avx2_kernels() {
  static const Kernels kernels{map<Silu>,      map<Sigmoid>,    map<GeluErf>, map<GeluTanh>,
                               gated<GeluErf>, gated<GeluTanh>, softmax};
  return kernels;
}

}  // namespace ebb::cpu::pointwise

#else

namespace ebb::cpu::pointwise {
// Never selected off x86 (isa_supported() says so); the portable loops keep the table valid.
const Kernels& avx2_kernels() {
  return portable_kernels();
}
}  // namespace ebb::cpu::pointwise

#endif
