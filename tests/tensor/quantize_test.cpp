// Quantizing then dequantizing (dequantize_to_f32, itself checked against gguf-py) returns
// each value to within the block's resolution.
#include "tensor/quantize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "tensor/dequantize.h"
#include "tensor/float_convert.h"

namespace ebb {
namespace {

std::vector<float> random_values(size_t n, float offset, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(offset, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<float> round_trip(DType t, const std::vector<float>& x) {
  const DTypeInfo& info = dtype_info(t);
  std::vector<std::byte> blocks(x.size() / info.block_elems * info.block_bytes);
  quantize_from_f32(t, x.data(), blocks.data(), x.size());
  std::vector<float> y(x.size());
  dequantize_to_f32(t, blocks.data(), y.data(), x.size());
  return y;
}

TEST(QuantizeTest, Q8_0IsWithinItsStepAndHitsTheLargestValue) {
  std::vector<float> x = random_values(32 * 64, 0.3f, 1);
  std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block
  const std::vector<float> y = round_trip(DType::Q8_0, x);
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const auto first = x.begin() + static_cast<std::ptrdiff_t>(b * 32);
    const auto largest = std::max_element(
        first, first + 32, [](float p, float q) { return std::fabs(p) < std::fabs(q); });
    // ggml quantizes against the f32 step and stores it as f16: up to 127 codes of that
    // rounding come on top of half a step.
    const float exact_step = std::fabs(*largest) / 127;
    const float step = f16_to_f32(f32_to_f16(exact_step));
    const float bound = step / 2 + 127 * std::fabs(step - exact_step) + 1e-7f;
    const size_t at = static_cast<size_t>(largest - x.begin());
    EXPECT_FLOAT_EQ(std::fabs(y[at]), 127 * step) << b;
    for (size_t j = b * 32; j < b * 32 + 32; ++j) ASSERT_LE(std::fabs(x[j] - y[j]), bound) << j;
  }
}

TEST(QuantizeTest, Q4_KIsWithinItsResolution) {
  for (const float offset : {0.0f, 2.0f, -2.0f}) {
    const std::vector<float> x = random_values(256 * 16, offset, 2);
    const std::vector<float> y = round_trip(DType::Q4_K, x);
    for (size_t b = 0; b < x.size() / 256; ++b) {
      const auto first = x.begin() + static_cast<std::ptrdiff_t>(b * 256);
      const float lo = std::min(0.0f, *std::min_element(first, first + 256));
      const float hi = std::max(0.0f, *std::max_element(first, first + 256));
      // Half a step of 15 over the range, plus the 6-bit coding of scales and mins.
      const float bound = (hi - lo) * (0.5f / 15 + 2.0f / 63);
      for (size_t j = b * 256; j < b * 256 + 256; ++j)
        ASSERT_LE(std::fabs(x[j] - y[j]), bound) << offset << " " << j;
    }
  }
}

TEST(QuantizeTest, OnlyWholeBlocksOfSupportedTypes) {
  std::vector<float> x(64, 1.0f);
  std::vector<std::byte> out(1024);
  EXPECT_THROW(quantize_from_f32(DType::Q8_0, x.data(), out.data(), 33), Error);
  EXPECT_THROW(quantize_from_f32(DType::Q4_K, x.data(), out.data(), 64), Error);
  EXPECT_THROW(quantize_from_f32(DType::Q5_K, x.data(), out.data(), 256), Error);
  EXPECT_FALSE(can_quantize(DType::F16));
  EXPECT_TRUE(can_quantize(DType::Q4_K));
}

}  // namespace
}  // namespace ebb
