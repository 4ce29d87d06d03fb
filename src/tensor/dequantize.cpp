#include "tensor/dequantize.h"

#include <array>
#include <cstring>

#include "core/error.h"
#include "tensor/float_convert.h"
#include "tensor/quant_blocks.h"

namespace ebb {
namespace {

// Element order inside a block mirrors ggml's (and gguf-py's) unpacking: see quant_blocks.h.
// Every operation follows gguf-py's numpy order (e.g. (d * sc) * q - dmin * m), so results are
// bit-identical. A fused multiply-add, where a compiler forms one, changes nothing: each product
// of an f16 scale with the small integers here needs at most 22 significant bits, so it is exact
// in f32 before the addition either way.

void decode(const BlockQ4_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((b.qs[j] & 0xF) - 8);
    y[j + 16] = d * static_cast<float>((b.qs[j] >> 4) - 8);
  }
}

void decode(const BlockQ4_1& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float m = f16_to_f32(b.m);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(b.qs[j] & 0xF) + m;
    y[j + 16] = d * static_cast<float>(b.qs[j] >> 4) + m;
  }
}

// Entry v has 0x10 in byte k where bit k of v is set: adds the fifth bits of eight values
// with one OR.
constexpr std::array<uint64_t, 256> kFifthBits = [] {
  std::array<uint64_t, 256> table{};
  for (uint32_t v = 0; v < 256; ++v)
    for (uint32_t k = 0; k < 8; ++k)
      if (v >> k & 1) table[v] |= uint64_t{0x10} << (8 * k);
  return table;
}();

// The 5-bit values of a Q5_0/Q5_1 block: nibbles as in Q4_0, bit j of qh on top of element j.
void unpack_q5(const uint8_t (&qs)[16], const uint8_t (&qh)[4], uint8_t (&q)[32]) {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0xF;
    q[j + 16] = qs[j] >> 4;
  }
  for (int k = 0; k < 4; ++k) {
    uint64_t eight;
    std::memcpy(&eight, q + 8 * k, 8);
    eight |= kFifthBits[qh[k]];
    std::memcpy(q + 8 * k, &eight, 8);
  }
}

void decode(const BlockQ5_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  uint8_t q[32];
  unpack_q5(b.qs, b.qh, q);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(q[j] - 16);
}

void decode(const BlockQ5_1& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float m = f16_to_f32(b.m);
  uint8_t q[32];
  unpack_q5(b.qs, b.qh, q);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(q[j]) + m;
}

void decode(const BlockQ8_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

// Elements h*128 + s*32 + l take bits 2s..2s+1 of qs[h*32 + l]; groups of 16 share a scale.
void decode(const BlockQ2_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float dmin = f16_to_f32(b.dmin);
  for (int h = 0; h < 2; ++h) {
    for (int s = 0; s < 4; ++s) {
      for (int half = 0; half < 2; ++half) {
        const int first = h * 128 + s * 32 + half * 16;
        const uint8_t sc = b.scales[first / 16];
        const float dl = d * static_cast<float>(sc & 0xF);
        const float ml = dmin * static_cast<float>(sc >> 4);
        const uint8_t* q = b.qs + h * 32 + half * 16;
        for (int l = 0; l < 16; ++l)
          y[first + l] = dl * static_cast<float>((q[l] >> (2 * s)) & 3) - ml;
      }
    }
  }
}

// Scale k: low nibble from byte k % 8 (high nibble for k >= 8), bits 4-5 from bits
// 2*(k/4)..+1 of byte 8 + k % 4.
int q3_k_scale(const BlockQ3_K& b, int k) {
  const int low = k < 8 ? b.scales[k] & 0xF : b.scales[k - 8] >> 4;
  const int high = (b.scales[8 + k % 4] >> (2 * (k / 4))) & 3;
  return (low | high << 4) - 32;
}

// Low bits as in Q2_K; element i's high bit is bit i/32 of hmask[i % 32].
void decode(const BlockQ3_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int h = 0; h < 2; ++h) {
    for (int s = 0; s < 4; ++s) {
      const int row = h * 4 + s;
      for (int half = 0; half < 2; ++half) {
        const int first = row * 32 + half * 16;
        const float dl = d * static_cast<float>(q3_k_scale(b, first / 16));
        for (int l = half * 16; l < half * 16 + 16; ++l) {
          const int low = (b.qs[h * 32 + l] >> (2 * s)) & 3;
          const int offset = (b.hmask[l] >> row) & 1 ? 0 : 4;
          y[row * 32 + l] = dl * static_cast<float>(low - offset);
        }
      }
    }
  }
}

// ggml's get_scale_min_k4: the 6-bit scales and mins of the 8 groups, packed in 12 bytes.
void k4_scales_mins(const uint8_t* s, int* scales, int* mins) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = s[j] & 63;
    mins[j] = s[j + 4] & 63;
    scales[j + 4] = (s[j + 8] & 0xF) | (s[j] >> 6) << 4;
    mins[j + 4] = (s[j + 8] >> 4) | (s[j + 4] >> 6) << 4;
  }
}

// Group g = 2c + s takes nibble s of qs[c*32 + l]; with qh, bit g of qh[l] is the fifth bit.
template <typename Block, bool kHasHighBit>
void decode_k4_family(const Block& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float dmin = f16_to_f32(b.dmin);
  int scales[8], mins[8];
  k4_scales_mins(b.scales, scales, mins);
  for (int g = 0; g < 8; ++g) {
    const float dl = d * static_cast<float>(scales[g]);
    const float ml = dmin * static_cast<float>(mins[g]);
    const uint8_t* q = b.qs + (g / 2) * 32;
    const int shift = 4 * (g % 2);
    for (int l = 0; l < 32; ++l) {
      int v = (q[l] >> shift) & 0xF;
      if constexpr (kHasHighBit) v |= ((b.qh[l] >> g) & 1) << 4;
      y[g * 32 + l] = dl * static_cast<float>(v) - ml;
    }
  }
}

void decode(const BlockQ4_K& b, float* y) {
  decode_k4_family<BlockQ4_K, false>(b, y);
}
void decode(const BlockQ5_K& b, float* y) {
  decode_k4_family<BlockQ5_K, true>(b, y);
}

// Element h*128 + s*32 + l: nibble s/2 of ql[h*64 + (s%2)*32 + l], high bits 2s..2s+1 of
// qh[h*32 + l].
void decode(const BlockQ6_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int h = 0; h < 2; ++h) {
    for (int s = 0; s < 4; ++s) {
      const uint8_t* ql = b.ql + h * 64 + (s % 2) * 32;
      const uint8_t* qh = b.qh + h * 32;
      const int first = h * 128 + s * 32;
      for (int half = 0; half < 2; ++half) {
        const float dl = d * static_cast<float>(b.scales[(first + half * 16) / 16]);
        for (int l = half * 16; l < half * 16 + 16; ++l) {
          const int q = ((ql[l] >> (4 * (s / 2))) & 0xF) | ((qh[l] >> (2 * s)) & 3) << 4;
          y[first + l] = dl * static_cast<float>(q - 32);
        }
      }
    }
  }
}

void decode(const BlockQ8_K& b, float* y) {
  for (int j = 0; j < 256; ++j) y[j] = b.d * static_cast<float>(b.qs[j]);
}

// The codebook scaled by one scale: the same products gguf-py forms, computed 16 times per
// scale instead of once per element.
struct ScaledIq4Values {
  explicit ScaledIq4Values(float scale) {
    for (int i = 0; i < 16; ++i) values[i] = scale * static_cast<float>(kIq4Values[i]);
  }
  float values[16];
};

void decode(const BlockIQ4_NL& b, float* y) {
  const ScaledIq4Values v(f16_to_f32(b.d));
  for (int j = 0; j < 16; ++j) {
    y[j] = v.values[b.qs[j] & 0xF];
    y[j + 16] = v.values[b.qs[j] >> 4];
  }
}

// Group k: scale nibble k%2 of scales_l[k/2] plus bits 2k..2k+1 of scales_h; its elements
// k*32 + s*16 + l take nibble s of qs[k*16 + l].
void decode(const BlockIQ4_XS& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int k = 0; k < 8; ++k) {
    const int low = (b.scales_l[k / 2] >> (4 * (k % 2))) & 0xF;
    const int high = (b.scales_h >> (2 * k)) & 3;
    const ScaledIq4Values v(d * static_cast<float>((low | high << 4) - 32));
    const uint8_t* q = b.qs + k * 16;
    for (int l = 0; l < 16; ++l) {
      y[k * 32 + l] = v.values[q[l] & 0xF];
      y[k * 32 + 16 + l] = v.values[q[l] >> 4];
    }
  }
}

template <typename Block>
void decode_blocks(const std::byte* src, float* dst, uint64_t blocks) {
  for (uint64_t i = 0; i < blocks; ++i) {
    Block b;
    std::memcpy(&b, src + i * sizeof(Block), sizeof(Block));
    decode(b, dst + i * Block::kElems);
  }
}

template <typename T, typename Convert>
void convert_elements(const std::byte* src, float* dst, uint64_t elems, Convert convert) {
  for (uint64_t i = 0; i < elems; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    dst[i] = convert(v);
  }
}

template <typename T>
void cast_elements(const std::byte* src, float* dst, uint64_t elems) {
  convert_elements<T>(src, dst, elems, [](T v) { return static_cast<float>(v); });
}

}  // namespace

void dequantize_to_f32(DType t, const std::byte* src, float* dst, uint64_t elems) {
  const uint32_t block_elems = dtype_info(t).block_elems;
  if (elems % block_elems != 0)
    fail("cannot dequantize {} elements of {}: not a multiple of its block size {}", elems,
         dtype_name(t), block_elems);
  if (elems == 0) return;
  const uint64_t blocks = elems / block_elems;
  switch (t) {
    case DType::F64:
      return cast_elements<double>(src, dst, elems);
    case DType::F32:
      std::memcpy(dst, src, elems * sizeof(float));
      return;
    case DType::F16:
      return convert_elements<uint16_t>(src, dst, elems, f16_to_f32);
    case DType::BF16:
      return convert_elements<uint16_t>(src, dst, elems, bf16_to_f32);
    case DType::F8_E4M3:
      return convert_elements<uint8_t>(src, dst, elems, f8_e4m3_to_f32);
    case DType::F8_E5M2:
      return convert_elements<uint8_t>(src, dst, elems, f8_e5m2_to_f32);
    case DType::I64:
      return cast_elements<int64_t>(src, dst, elems);
    case DType::I32:
      return cast_elements<int32_t>(src, dst, elems);
    case DType::I16:
      return cast_elements<int16_t>(src, dst, elems);
    case DType::I8:
      return cast_elements<int8_t>(src, dst, elems);
    case DType::U64:
      return cast_elements<uint64_t>(src, dst, elems);
    case DType::U32:
      return cast_elements<uint32_t>(src, dst, elems);
    case DType::U16:
      return cast_elements<uint16_t>(src, dst, elems);
    case DType::U8:
      return cast_elements<uint8_t>(src, dst, elems);
    case DType::BOOL:
      return convert_elements<uint8_t>(src, dst, elems, [](uint8_t v) { return v ? 1.0f : 0.0f; });
    case DType::Q4_0:
      return decode_blocks<BlockQ4_0>(src, dst, blocks);
    case DType::Q4_1:
      return decode_blocks<BlockQ4_1>(src, dst, blocks);
    case DType::Q5_0:
      return decode_blocks<BlockQ5_0>(src, dst, blocks);
    case DType::Q5_1:
      return decode_blocks<BlockQ5_1>(src, dst, blocks);
    case DType::Q8_0:
      return decode_blocks<BlockQ8_0>(src, dst, blocks);
    case DType::Q2_K:
      return decode_blocks<BlockQ2_K>(src, dst, blocks);
    case DType::Q3_K:
      return decode_blocks<BlockQ3_K>(src, dst, blocks);
    case DType::Q4_K:
      return decode_blocks<BlockQ4_K>(src, dst, blocks);
    case DType::Q5_K:
      return decode_blocks<BlockQ5_K>(src, dst, blocks);
    case DType::Q6_K:
      return decode_blocks<BlockQ6_K>(src, dst, blocks);
    case DType::Q8_K:
      return decode_blocks<BlockQ8_K>(src, dst, blocks);
    case DType::IQ4_NL:
      return decode_blocks<BlockIQ4_NL>(src, dst, blocks);
    case DType::IQ4_XS:
      return decode_blocks<BlockIQ4_XS>(src, dst, blocks);
  }
  fail("cannot dequantize: unknown dtype id {}", static_cast<int>(t));
}

}  // namespace ebb
