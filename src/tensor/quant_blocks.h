#pragma once
// Byte layouts of ggml's block-quantized types, as GGUF files store them (little-endian, no
// padding). f16 fields are kept as raw uint16_t patterns. Blocks in a file need not be aligned
// for these structs: copy them out with memcpy rather than casting pointers.
#include <array>
#include <bit>
#include <cstdint>

namespace ebb {

static_assert(std::endian::native == std::endian::little, "GGUF blocks are little-endian");

inline constexpr uint32_t kSuperBlockElems = 256;  // ggml's QK_K

// value = d * (q - 8); element j is the low nibble of qs[j % 16] for j < 16, else the high one.
struct BlockQ4_0 {
  static constexpr uint32_t kElems = 32;
  uint16_t d;
  uint8_t qs[16];
};

// value = d * q + m; nibbles as in Q4_0.
struct BlockQ4_1 {
  static constexpr uint32_t kElems = 32;
  uint16_t d;
  uint16_t m;
  uint8_t qs[16];
};

// value = d * (q - 16); the low four bits as in Q4_0, bit 4 of element j is bit j of qh.
struct BlockQ5_0 {
  static constexpr uint32_t kElems = 32;
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};

// value = d * q + m; bits as in Q5_0.
struct BlockQ5_1 {
  static constexpr uint32_t kElems = 32;
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};

// value = d * qs[j].
struct BlockQ8_0 {
  static constexpr uint32_t kElems = 32;
  uint16_t d;
  int8_t qs[32];
};

// 16 groups of 16; value = d * (scales[g] & 15) * q - dmin * (scales[g] >> 4), q two bits.
struct BlockQ2_K {
  static constexpr uint32_t kElems = kSuperBlockElems;
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d;
  uint16_t dmin;
};

// 16 groups of 16 with 6-bit signed scales packed in 12 bytes; q = low two bits from qs minus
// 4 where the hmask bit is clear.
struct BlockQ3_K {
  static constexpr uint32_t kElems = kSuperBlockElems;
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};

// 8 groups of 32 with 6-bit scales and mins packed in 12 bytes; value = d * sc * q - dmin * m.
struct BlockQ4_K {
  static constexpr uint32_t kElems = kSuperBlockElems;
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};

// Q4_K plus a fifth bit per element in qh.
struct BlockQ5_K {
  static constexpr uint32_t kElems = kSuperBlockElems;
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};

// 16 groups of 16 with int8 scales; value = d * scales[g] * (q - 32), q six bits.
struct BlockQ6_K {
  static constexpr uint32_t kElems = kSuperBlockElems;
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};

// value = d * qs[j]; bsums[g] is the sum of qs over group g of 16 (ggml's dot products use it).
struct BlockQ8_K {
  static constexpr uint32_t kElems = kSuperBlockElems;
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

// value = d * kIq4Values[q]; nibbles as in Q4_0.
struct BlockIQ4_NL {
  static constexpr uint32_t kElems = 32;
  uint16_t d;
  uint8_t qs[16];
};

// 8 groups of 32 with 6-bit signed scales (low nibbles in scales_l, high pairs in scales_h);
// value = d * (scale - 32) * kIq4Values[q].
struct BlockIQ4_XS {
  static constexpr uint32_t kElems = kSuperBlockElems;
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};

// The non-linear 4-bit codebook of IQ4_NL and IQ4_XS.
inline constexpr std::array<int8_t, 16> kIq4Values = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                      1,    13,   25,  38,  53,  69,  89,  113};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ2_K) == 84 &&
              sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 &&
              sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292 && sizeof(BlockIQ4_NL) == 18 &&
              sizeof(BlockIQ4_XS) == 136);

}  // namespace ebb
