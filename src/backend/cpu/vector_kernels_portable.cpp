#include "backend/cpu/vector_kernels.h"

namespace ebb::cpu {
namespace {

double sum(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

double sum_squares(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
  return s;
}

double sum_squared_deviations(const float* x, int64_t n, double mean) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (x[i] - mean) * (x[i] - mean);
  return s;
}

void scale_shift(const float* x, float* y, int64_t n, float mean, float scale, float shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * scale + shift;
}

void normalize(const float* x, float* y, int64_t n, float mean, float rstd, const float* gamma,
               const float* beta) {
  for (int64_t i = 0; i < n; ++i) {
    float v = (x[i] - mean) * rstd;
    if (gamma) v *= gamma[i];
    if (beta) v += beta[i];
    y[i] = v;
  }
}

template <typename Op>
void binary(const float* a, bool a_repeat, const float* b, bool b_repeat, float* y, int64_t n,
            Op op) {
  const int64_t sa = a_repeat ? 0 : 1, sb = b_repeat ? 0 : 1;
  for (int64_t i = 0; i < n; ++i) y[i] = op(a[i * sa], b[i * sb]);
}

void add(const float* a, bool a_repeat, const float* b, bool b_repeat, float* y, int64_t n) {
  binary(a, a_repeat, b, b_repeat, y, n, [](float u, float v) { return u + v; });
}

void mul(const float* a, bool a_repeat, const float* b, bool b_repeat, float* y, int64_t n) {
  binary(a, a_repeat, b, b_repeat, y, n, [](float u, float v) { return u * v; });
}

}  // namespace

const VectorKernels& portable_vector_kernels() {
  static const VectorKernels kernels{"portable",  sum,       sum_squares, sum_squared_deviations,
                                     scale_shift, normalize, add,         mul};
  return kernels;
}

const VectorKernels& vector_kernels() {
  static const VectorKernels& best =
      avx2_vector_kernels() ? *avx2_vector_kernels() : portable_vector_kernels();
  return best;
}

}  // namespace ebb::cpu
