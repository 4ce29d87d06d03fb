#include "synth/synth_fill.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace ebb::synth {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// splitmix64's output function: a bijective 64-bit mix.
uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A counter-based stream: word i is a pure function of (seed, key, i).
struct Stream {
  uint64_t base;
  uint64_t word(uint64_t i) const { return mix(base + i * kGolden); }
};

Stream stream_for(uint64_t seed, uint64_t key) {
  return {mix(seed ^ mix(key + kGolden))};
}

float draw(uint64_t bits, ValueRange range) {
  const float unit = static_cast<float>(bits >> 40) * 0x1p-23f - 1.0f;  // [-1, 1)
  return range.center + range.half_width * unit;
}

uint16_t bf16_bits(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

template <typename T, typename Convert>
void fill_floats(std::span<std::byte> dst, Stream stream, uint64_t first, ValueRange range,
                 Convert convert) {
  const size_t count = dst.size() / sizeof(T);
  for (size_t i = 0; i < count; ++i) {
    const T value = convert(draw(stream.word(first + i), range));
    std::memcpy(dst.data() + i * sizeof(T), &value, sizeof(T));
  }
}

// Where each block format keeps its scale (and its min, for the formats with one), and how
// large a value one unit of scale can reach, from ggml's block layouts.
struct BlockScales {
  uint32_t d_offset;
  float d_divisor;   // d = amplitude / d_divisor keeps |values| within the amplitude
  int min_offset;    // -1: no min
  float min_factor;  // min = amplitude * min_factor
};

BlockScales block_scales(DType type) {
  switch (type) {
    case DType::Q4_0:
      return {0, 8.0f, -1, 0.0f};
    case DType::Q4_1:
      return {0, 7.5f, 2, -1.0f};
    case DType::Q5_0:
      return {0, 16.0f, -1, 0.0f};
    case DType::Q5_1:
      return {0, 15.5f, 2, -1.0f};
    case DType::Q8_0:
      return {0, 128.0f, -1, 0.0f};
    case DType::Q2_K:
      return {80, 15.0f * 3, 82, 1.0f / 15};
    case DType::Q3_K:
      return {108, 32.0f * 4, -1, 0.0f};
    case DType::Q4_K:
      return {0, 63.0f * 15, 2, 1.0f / 63};
    case DType::Q5_K:
      return {0, 63.0f * 31, 2, 1.0f / 63};
    case DType::Q6_K:
      return {208, 128.0f * 32, -1, 0.0f};
    case DType::Q8_K:
      return {0, 128.0f, -1, 0.0f};
    case DType::IQ4_NL:
      return {0, 127.0f, -1, 0.0f};
    case DType::IQ4_XS:
      return {0, 32.0f * 127, -1, 0.0f};
    default:
      fail("synthetic data: no block layout for {}", dtype_name(type));
  }
}

void put_half(std::byte* at, float value) {
  const uint16_t bits = half_bits(value);
  std::memcpy(at, &bits, 2);
}

// Random quants, then valid scales over them. Q8_K also keeps per-16 sums of its quants.
void fill_blocks(DType type, std::span<std::byte> dst, Stream stream, uint64_t first_block,
                 ValueRange range) {
  const uint32_t block_bytes = dtype_info(type).block_bytes;
  const uint32_t words = (block_bytes + 7) / 8;
  const BlockScales scales = block_scales(type);
  const float amplitude = std::fabs(range.center) + range.half_width;
  for (size_t b = 0; b < dst.size() / block_bytes; ++b) {
    std::byte* block = dst.data() + b * block_bytes;
    for (uint32_t w = 0; w < words; ++w) {
      const uint64_t bits = stream.word((first_block + b) * words + w);
      std::memcpy(block + w * 8, &bits, std::min<uint32_t>(8, block_bytes - w * 8));
    }
    const float d = amplitude / scales.d_divisor;
    if (type == DType::Q8_K) {
      std::memcpy(block, &d, 4);
      for (int group = 0; group < 16; ++group) {
        int16_t sum = 0;
        for (int i = 0; i < 16; ++i) sum += static_cast<int8_t>(block[4 + group * 16 + i]);
        std::memcpy(block + 260 + group * 2, &sum, 2);
      }
    } else {
      put_half(block + scales.d_offset, d);
    }
    if (scales.min_offset >= 0) put_half(block + scales.min_offset, amplitude * scales.min_factor);
  }
}

}  // namespace

uint16_t half_bits(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t magnitude = x & 0x7FFFFFFF;
  if (magnitude >= 0x7F800000)  // infinity, or NaN kept quiet
    return static_cast<uint16_t>(sign | 0x7C00 | (magnitude > 0x7F800000 ? 0x200 : 0));
  if (magnitude >= 0x477FF000) return static_cast<uint16_t>(sign | 0x7C00);  // ≥ 65520 → inf
  if (magnitude < 0x38800000) {
    // Below half's smallest normal (2^-14): count units of 2^-24, the subnormal step. The
    // product is exact in float; the default rounding mode rounds it to nearest even.
    const float units = std::nearbyint(std::bit_cast<float>(magnitude) * 0x1p24f);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(units));
  }
  // Rebias the exponent (127 → 15) and round the mantissa from 23 to 10 bits, ties to even; a
  // carry out of the mantissa correctly bumps the exponent.
  const uint32_t rounded = magnitude + 0xFFF + ((magnitude >> 13) & 1);
  return static_cast<uint16_t>(sign | ((rounded - (112u << 23)) >> 13));
}

void synth_fill(DType type, std::span<std::byte> dst, uint64_t seed, uint64_t tensor_key,
                uint64_t byte_offset, ValueRange range) {
  const DTypeInfo& info = dtype_info(type);
  if (byte_offset % info.block_bytes != 0 || dst.size() % info.block_bytes != 0)
    fail("synthetic data: {} bytes at offset {} are not whole {} elements", dst.size(), byte_offset,
         info.name);
  const Stream stream = stream_for(seed, tensor_key);
  const uint64_t first = byte_offset / info.block_bytes;
  switch (type) {
    case DType::F32:
      return fill_floats<float>(dst, stream, first, range, [](float v) { return v; });
    case DType::F64:
      return fill_floats<double>(dst, stream, first, range, [](float v) { return double{v}; });
    case DType::F16:
      return fill_floats<uint16_t>(dst, stream, first, range, half_bits);
    case DType::BF16:
      return fill_floats<uint16_t>(dst, stream, first, range, bf16_bits);
    default:
      if (!info.quantized) fail("synthetic data: cannot draw random {} values", info.name);
      return fill_blocks(type, dst, stream, first, range);
  }
}

void fill_position_ids(std::span<std::byte> dst, uint64_t byte_offset) {
  for (size_t i = 0; i < dst.size() / 8; ++i) {
    const int64_t position = static_cast<int64_t>(byte_offset / 8 + i);
    std::memcpy(dst.data() + i * 8, &position, 8);
  }
}

}  // namespace ebb::synth
