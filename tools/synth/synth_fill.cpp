#include "synth/synth_fill.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "tensor/float_convert.h"
#include "tensor/random_blocks.h"

namespace ebb::synth {
namespace {

// splitmix64's output function: folds the tensor key into the seed so every tensor gets its
// own stream.
uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

template <typename T, typename ToF32, typename FromF32>
void shift(std::span<std::byte> dst, float center, ToF32 to_f32, FromF32 from_f32) {
  for (size_t i = 0; i < dst.size() / sizeof(T); ++i) {
    T v;
    std::memcpy(&v, dst.data() + i * sizeof(T), sizeof(T));
    v = from_f32(to_f32(v) + center);
    std::memcpy(dst.data() + i * sizeof(T), &v, sizeof(T));
  }
}

// fill_random draws around zero; norm weights sit around one.
void add_center(DType type, std::span<std::byte> dst, float center) {
  switch (type) {
    case DType::F32:
      return shift<float>(
          dst, center, [](float v) { return v; }, [](float v) { return v; });
    case DType::F64:
      return shift<double>(
          dst, center, [](double v) { return static_cast<float>(v); },
          [](float v) { return double{v}; });
    case DType::F16:
      return shift<uint16_t>(dst, center, f16_to_f32, f32_to_f16);
    case DType::BF16:
      return shift<uint16_t>(dst, center, bf16_to_f32, f32_to_bf16);
    default:
      fail("synthetic data: {} values cannot be centred away from zero", dtype_name(type));
  }
}

}  // namespace

void synth_fill(DType type, std::span<std::byte> dst, uint64_t seed, uint64_t tensor_key,
                uint64_t byte_offset, ValueRange range) {
  const DTypeInfo& info = dtype_info(type);
  if (byte_offset % info.block_bytes != 0 || dst.size() % info.block_bytes != 0)
    fail("synthetic data: {} bytes at offset {} are not whole {} elements", dst.size(), byte_offset,
         info.name);
  if (!info.quantized && type != DType::F32 && type != DType::F64 && type != DType::F16 &&
      type != DType::BF16)
    fail("synthetic data: cannot draw random {} values", info.name);
  if (range.half_width == 0.0f && !info.quantized) {
    // A constant (CLIP's logit scale): zeros shifted to the centre.
    std::fill(dst.begin(), dst.end(), std::byte{0});
    return add_center(type, dst, range.center);
  }
  // Quantized blocks are symmetric around zero: they get the whole amplitude instead.
  const bool centred = range.center != 0.0f && !info.quantized;
  const float scale = centred ? range.half_width : std::fabs(range.center) + range.half_width;
  fill_random(type, dst, mix(seed ^ mix(tensor_key)), scale, byte_offset / info.block_bytes);
  if (centred) add_center(type, dst, range.center);
}

void fill_position_ids(std::span<std::byte> dst, uint64_t byte_offset) {
  for (size_t i = 0; i < dst.size() / 8; ++i) {
    const int64_t position = static_cast<int64_t>(byte_offset / 8 + i);
    std::memcpy(dst.data() + i * 8, &position, 8);
  }
}

}  // namespace ebb::synth
