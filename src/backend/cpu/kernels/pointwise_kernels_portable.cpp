// Scalar definitions. GELU uses forms equal to torch's but free of its cancellation for
// negative inputs: x·erfc(-x/√2)/2 for 1 + erf, and x·sigmoid(2u) for (1 + tanh u)/2.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/kernels/pointwise_kernels.h"

namespace ebb::cpu::pointwise {
namespace {

float sigmoid_of(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}
float gelu_erf_of(float x) {
  return 0.5f * x * std::erfc(x * -0.70710678118654752f);
}
float gelu_tanh_of(float x) {
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  return x / (1.0f + std::exp(-2.0f * u));
}

template <float (*F)(float)>
void map(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F(x[i]);
}

template <float (*F)(float)>
void gated(const float* hidden, const float* gate, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = hidden[i] * F(gate[i]);
}

void silu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void softmax(const float* x, float* y, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - max);
    sum += y[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

}  // namespace

const Kernels& portable_kernels() {
  static const Kernels kernels{silu,
                               map<sigmoid_of>,
                               map<gelu_erf_of>,
                               map<gelu_tanh_of>,
                               gated<gelu_erf_of>,
                               gated<gelu_tanh_of>,
                               softmax};
  return kernels;
}

}  // namespace ebb::cpu::pointwise
