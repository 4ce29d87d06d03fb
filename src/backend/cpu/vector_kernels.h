#pragma once
// Row kernels behind the CPU backend's norms and elementwise ops, in a portable version and an
// AVX2+FMA version chosen once at run time. Every reduction runs in an order fixed by the
// element index alone (never by pointer alignment), so copies of the same data at different
// addresses give bit-identical results.
#include <cstdint>

namespace ebb::cpu {

struct VectorKernels {
  const char* name;
  // Sums accumulated in double.
  double (*sum)(const float* x, int64_t n);
  double (*sum_squares)(const float* x, int64_t n);
  double (*sum_squared_deviations)(const float* x, int64_t n, double mean);
  // y = (x - mean) * scale + shift
  void (*scale_shift)(const float* x, float* y, int64_t n, float mean, float scale, float shift);
  // y = (x - mean) * rstd * gamma[i] + beta[i]; gamma and beta may be null (1 and 0).
  void (*normalize)(const float* x, float* y, int64_t n, float mean, float rstd, const float* gamma,
                    const float* beta);
  // y = a op b over n elements; an operand flagged `repeat` is one value used n times.
  void (*add)(const float* a, bool a_repeat, const float* b, bool b_repeat, float* y, int64_t n);
  void (*mul)(const float* a, bool a_repeat, const float* b, bool b_repeat, float* y, int64_t n);
};

const VectorKernels& portable_vector_kernels();
// Null when this CPU lacks AVX2 or FMA.
const VectorKernels* avx2_vector_kernels();
// The fastest set this CPU runs.
const VectorKernels& vector_kernels();

}  // namespace ebb::cpu
