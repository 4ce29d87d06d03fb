#include "tensor/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "tensor/float_convert.h"
#include "tensor/quant_blocks.h"

namespace ebb {
namespace {

void encode(const float* x, BlockQ8_0& b) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d != 0 ? 1 / d : 0;
  b.d = f32_to_f16(d);
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(std::lround(x[j] * id));
}

// Rounds v / step to an integer in [0, top]; a zero step gives 0.
int level(float v, float step, int top) {
  if (step == 0) return 0;
  return std::clamp(static_cast<int>(std::lround(v / step)), 0, top);
}

// Each group of 32 spans [-min, -min + 15 · scale]; scales and mins are then coded in 6 bits
// against the block's d and dmin. Packing inverts dequantize's k4_scales_mins.
void encode(const float* x, BlockQ4_K& b) {
  float scale[8], min[8];
  for (int g = 0; g < 8; ++g) {
    const float* v = x + g * 32;
    const float lo = std::min(0.0f, *std::min_element(v, v + 32));
    const float hi = *std::max_element(v, v + 32);
    scale[g] = (hi - lo) / 15;
    min[g] = -lo;
  }
  b.d = f32_to_f16(*std::max_element(scale, scale + 8) / 63);
  b.dmin = f32_to_f16(*std::max_element(min, min + 8) / 63);
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  int sc[8], m[8];
  for (int g = 0; g < 8; ++g) {
    sc[g] = level(scale[g], d, 63);
    m[g] = level(min[g], dmin, 63);
  }
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
    b.scales[j + 4] = static_cast<uint8_t>(m[j] | (m[j + 4] >> 4) << 6);
    b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | (m[j + 4] & 0xF) << 4);
  }
  std::memset(b.qs, 0, sizeof b.qs);
  for (int g = 0; g < 8; ++g) {
    const float step = d * static_cast<float>(sc[g]);
    const float offset = dmin * static_cast<float>(m[g]);
    for (int l = 0; l < 32; ++l) {
      const int q = level(x[g * 32 + l] + offset, step, 15);
      b.qs[(g / 2) * 32 + l] |= static_cast<uint8_t>(q << (4 * (g % 2)));
    }
  }
}

template <typename Block>
void encode_blocks(const float* src, std::byte* dst, uint64_t blocks) {
  for (uint64_t i = 0; i < blocks; ++i) {
    Block b;
    encode(src + i * Block::kElems, b);
    std::memcpy(dst + i * sizeof(Block), &b, sizeof(Block));
  }
}

}  // namespace

bool can_quantize(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_K;
}

void quantize_from_f32(DType t, const float* src, std::byte* dst, uint64_t elems) {
  const DTypeInfo& info = dtype_info(t);
  if (!can_quantize(t)) fail("cannot quantize to {} (Q8_0 and Q4_K can be written)", info.name);
  if (elems % info.block_elems != 0)
    fail("{} values are not whole {} blocks of {}", elems, info.name, info.block_elems);
  const uint64_t blocks = elems / info.block_elems;
  if (t == DType::Q8_0) return encode_blocks<BlockQ8_0>(src, dst, blocks);
  encode_blocks<BlockQ4_K>(src, dst, blocks);
}

}  // namespace ebb
