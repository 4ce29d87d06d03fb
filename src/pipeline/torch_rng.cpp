#include "pipeline/torch_rng.h"

#include <cmath>
#include <cstdint>
#include <numbers>

// Bit-exactness depends on which multiply-adds are fused: exactly those written as std::fma
// below, the ones PyTorch's compiled AVX2 kernel fuses. Any other contraction by our compiler
// (GCC fuses across statements whenever the target has FMA) would change the last bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace ebb {
namespace {

constexpr float kTwoPi = static_cast<float>(2.0 * std::numbers::pi);

// Natural logarithm on (0, 1] by the Cephes single-precision method, in the exact order of
// operations of PyTorch's log256_ps. Box–Muller feeds it 1 - u with u in [0, 1 - 2^-24].
float cephes_log(float x) {
  int exponent;
  float mantissa = std::frexp(x, &exponent);  // x = mantissa * 2^exponent, mantissa in [0.5, 1)
  float e = static_cast<float>(exponent);
  if (mantissa < 0.707106781186547524f) {
    e -= 1.0f;
    mantissa = mantissa + mantissa - 1.0f;
  } else {
    mantissa = mantissa - 1.0f;
  }
  const float m = mantissa;
  const float z = m * m;
  float y = std::fma(7.0376836292E-2f, m, -1.1514610310E-1f);
  y = std::fma(y, m, 1.1676998740E-1f);
  y = std::fma(y, m, -1.2420140846E-1f);
  y = std::fma(y, m, 1.4249322787E-1f);
  y = std::fma(y, m, -1.6668057665E-1f);
  y = std::fma(y, m, 2.0000714765E-1f);
  y = std::fma(y, m, -2.4999993993E-1f);
  y = std::fma(y, m, 3.3333331174E-1f);
  const float ym = y * m;
  const float e_low = e * -2.12194440e-4f;
  y = std::fma(ym, z, e_low);
  y = y - 0.5f * z;
  return std::fma(e, 0.693359375f, m + y);
}

struct SinCos {
  float sin, cos;
};

// sin and cos on [0, 2π) by the Cephes single-precision method, in the exact order of
// operations of PyTorch's sincos256_ps. Zero signs may differ from it; randn adds the mean
// (+0) afterwards, which erases them.
SinCos cephes_sincos(float x) {
  int octant = static_cast<int>(x * 1.27323954473516f);  // 4 / π
  octant = (octant + 1) & ~1;
  const float y = static_cast<float>(octant);
  // Extended-precision reduction to [-π/4, π/4]: π/4 split into three parts.
  x = std::fma(y, -0.78515625f, x);
  x = std::fma(y, -2.4187564849853515625e-4f, x);
  x = std::fma(y, -3.77489497744594108e-8f, x);
  const float z = x * x;

  float c = std::fma(2.443315711809948E-005f, z, -1.388731625493765E-003f);
  c = std::fma(c, z, 4.166664568298827E-002f);
  const float cz = c * z;
  c = std::fma(cz, z, -(0.5f * z));
  c = c + 1.0f;

  float s = std::fma(-1.9515295891E-4f, z, 8.3321608736E-3f);
  s = std::fma(s, z, -1.6666654611E-1f);
  const float sz = s * z;
  s = std::fma(sz, x, x);

  const bool sin_uses_sin_poly = (octant & 2) == 0;
  float sin_value = sin_uses_sin_poly ? s : c;
  float cos_value = sin_uses_sin_poly ? c : s;
  if (octant & 4) sin_value = -sin_value;
  if (((octant - 2) & 4) == 0) cos_value = -cos_value;
  return {sin_value, cos_value};
}

}  // namespace

TorchCpuGenerator::TorchCpuGenerator(uint64_t seed)
    : engine_(static_cast<std::mt19937::result_type>(seed & 0xffffffffu)) {}

float TorchCpuGenerator::uniform_float() {
  return static_cast<float>(engine_() & 0xffffffu) * 0x1p-24f;
}

double TorchCpuGenerator::uniform_double() {
  const uint64_t high = engine_();
  const uint64_t low = engine_();
  return static_cast<double>(((high << 32) | low) & ((uint64_t{1} << 53) - 1)) * 0x1p-53;
}

void TorchCpuGenerator::randn(std::span<float> out) {
  if (out.size() >= 16) {
    randn_vectorized(out);
  } else {
    for (float& v : out) v = randn_scalar();
  }
}

void TorchCpuGenerator::randn_vectorized(std::span<float> out) {
  const auto box_muller_16 = [](float* d) {
    for (int j = 0; j < 8; ++j) {
      const float radius = std::sqrt(-2.0f * cephes_log(1.0f - d[j]));
      const SinCos sc = cephes_sincos(kTwoPi * d[j + 8]);
      d[j] = radius * sc.cos + 0.0f;
      d[j + 8] = radius * sc.sin + 0.0f;
    }
  };
  for (float& v : out) v = uniform_float();
  const size_t n = out.size();
  for (size_t i = 0; i + 16 <= n; i += 16) box_muller_16(out.data() + i);
  if (n % 16 != 0) {
    float* tail = out.data() + n - 16;
    for (int i = 0; i < 16; ++i) tail[i] = uniform_float();
    box_muller_16(tail);
  }
}

float TorchCpuGenerator::randn_scalar() {
  // "+ 0.0" is PyTorch's "* std + mean" with mean 0; it also turns -0 into +0.
  if (cached_normal_) {
    const double v = *cached_normal_;
    cached_normal_.reset();
    return static_cast<float>(v + 0.0);
  }
  const double u1 = uniform_double();
  const double u2 = uniform_double();
  const double radius = std::sqrt(-2.0 * std::log1p(-u2));
  const double theta = 2.0 * std::numbers::pi * u1;
  cached_normal_ = radius * std::sin(theta);
  return static_cast<float>(radius * std::cos(theta) + 0.0);
}

}  // namespace ebb
