// Plain C++ tile steps: the reference the SIMD ones are checked against, and the path for
// processors without AVX2.
#include <cmath>
#include <limits>

#include "backend/cpu/kernels/attention_tiles.h"

namespace ebb::cpu::attention_tiles {
namespace {

void scores(float* s, const float* qt, const float* kt, int64_t k_stride, int64_t keys, int64_t dim,
            int64_t rows) {
  for (int64_t j = 0; j < keys; ++j) {
    float* srow = s + j * kPanelStride;
    for (int64_t i = 0; i < rows; ++i) srow[i] = 0.0f;
    for (int64_t d = 0; d < dim; ++d) {
      const float k = kt[j * k_stride + d];
      const float* q = qt + d * kPanelStride;
      for (int64_t i = 0; i < rows; ++i) srow[i] += k * q[i];
    }
  }
}

void softmax_step(float* s, float* m, float* l, float* alpha, int64_t keys, int64_t rows) {
  for (int64_t i = 0; i < rows; ++i) {
    float tile_max = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < keys; ++j) tile_max = std::fmax(tile_max, s[j * kPanelStride + i]);
    const float new_max = std::fmax(m[i], tile_max);
    // Until a row sees a finite score, subtracting 0 keeps exp(-inf - max) from becoming NaN.
    const float base = std::isinf(new_max) && new_max < 0 ? 0.0f : new_max;
    float sum = 0.0f;
    for (int64_t j = 0; j < keys; ++j) {
      float& x = s[j * kPanelStride + i];
      x = std::exp2(x - base);
      sum += x;
    }
    alpha[i] = std::exp2(m[i] - base);
    l[i] = l[i] * alpha[i] + sum;
    m[i] = new_max;
  }
}

void accumulate(float* ot, const float* p, const float* alpha, const float* vt, int64_t v_stride,
                int64_t keys, int64_t dim, int64_t rows) {
  for (int64_t d = 0; d < dim; ++d) {
    float* o = ot + d * kPanelStride;
    for (int64_t i = 0; i < rows; ++i) o[i] *= alpha[i];
    for (int64_t j = 0; j < keys; ++j) {
      const float v = vt[j * v_stride + d];
      const float* pj = p + j * kPanelStride;
      for (int64_t i = 0; i < rows; ++i) o[i] += pj[i] * v;
    }
  }
}

}  // namespace

const Ops& portable_ops() {
  static const Ops ops{scores, softmax_step, accumulate};
  return ops;
}

}  // namespace ebb::cpu::attention_tiles
