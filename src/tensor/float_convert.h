#pragma once
// Conversions between f32 and the narrow float formats that model files store: IEEE half (f16),
// bfloat16, and the two OCP 8-bit formats (e4m3fn, e5m2). Header-only: dequantization and
// random tensor filling call them once per element.
//
// The f16 and f8 decoders place the narrow exponent and mantissa into an f32 bit pattern and
// rescale by a power of two; the multiply is exact for normals and subnormals alike under the
// default floating-point environment (no flush-to-zero), and is branch-free so loops vectorize.
#include <bit>
#include <cstdint>

namespace ebb {

constexpr float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t shifted = static_cast<uint32_t>(h & 0x7FFFu) << 13;
  const uint32_t finite = std::bit_cast<uint32_t>(std::bit_cast<float>(shifted) * 0x1p112f);
  // Infinity and NaN keep their mantissa under the f32 all-ones exponent. Masks rather than a
  // branch or select, which would stop loops from vectorizing.
  const uint32_t special = 0u - static_cast<uint32_t>(shifted >= (0x7C00u << 13));
  return std::bit_cast<float>(sign | (finite & ~special) | ((shifted | 0x7F800000u) & special));
}

// Rounds to nearest, ties to even; overflow gives infinity. NaN stays NaN (quieted, sign and
// top payload bits kept, as x86's F16C does).
constexpr uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t magnitude = x & 0x7FFFFFFFu;
  const uint32_t odd = (magnitude >> 13) & 1u;
  const uint32_t normal = (magnitude - ((127u - 15u) << 23) + 0xFFFu + odd) >> 13;
  // Below 2^-14 the result is subnormal: adding 0.5 makes the f32 unit in the last place 2^-24,
  // the f16 subnormal step, so the hardware addition does the rounding.
  const uint32_t subnormal =
      std::bit_cast<uint32_t>(std::bit_cast<float>(magnitude) + 0.5f) - 0x3F000000u;
  const uint32_t nan = 0x7E00u | ((magnitude >> 13) & 0x3FFu);
  // Every case is computed and one selected with masks so that loops vectorize: conditional
  // expressions become branches around the floating-point addition. Signed comparisons (the
  // magnitude fits) are cheaper in SSE2 than unsigned ones.
  const int32_t m = static_cast<int32_t>(magnitude);
  uint32_t result = normal;
  auto replace_if = [&result](bool condition, uint32_t value) {
    const uint32_t mask = 0u - static_cast<uint32_t>(condition);
    result = (result & ~mask) | (value & mask);
  };
  replace_if(m < 0x38800000, subnormal);
  // 65520 is halfway between 65504 (the largest f16) and 2^16; the tie goes to the even
  // pattern, which is infinity.
  replace_if(m >= 0x477FF000, 0x7C00u);
  replace_if(m > 0x7F800000, nan);
  return static_cast<uint16_t>(((x >> 16) & 0x8000u) | result);
}

constexpr float bf16_to_f32(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

// Rounds to nearest, ties to even; NaN stays NaN (quieted, sign and top payload bits kept).
constexpr uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t rounded = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
  const uint32_t nan = (x >> 16) | 0x40u;
  return static_cast<uint16_t>((x & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

// e4m3fn: exponent bias 7, no infinities; S.1111.111 is NaN, so the largest value is 448.
constexpr float f8_e4m3_to_f32(uint8_t b) {
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t magnitude = b & 0x7Fu;
  const uint32_t finite = std::bit_cast<uint32_t>(std::bit_cast<float>(magnitude << 20) * 0x1p120f);
  const uint32_t nan = 0u - static_cast<uint32_t>(magnitude == 0x7Fu);
  return std::bit_cast<float>(sign | (finite & ~nan) | (0x7FC00000u & nan));
}

// e5m2 has f16's exponent and the top two bits of its mantissa.
constexpr float f8_e5m2_to_f32(uint8_t b) {
  return f16_to_f32(static_cast<uint16_t>(b << 8));
}

}  // namespace ebb
