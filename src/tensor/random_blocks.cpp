#include "tensor/random_blocks.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "tensor/float_convert.h"
#include "tensor/quant_blocks.h"

namespace ebb {
namespace {

// splitmix64's finalizer.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Counter-based: word k is a hash of (seed, k), so any chunk of a tensor can be generated
// without the words before it. The hash is wyrand's (one 64x64->128-bit multiply per word).
class WordStream {
 public:
  explicit WordStream(uint64_t seed) : key_(mix64(seed)) {}
  uint64_t word(uint64_t k) const {
    const uint64_t s = key_ + (k + 1) * 0xA0761D6478BD642Full;
    const unsigned __int128 t = static_cast<unsigned __int128>(s) * (s ^ 0xE7037ED1A0B428DBull);
    return static_cast<uint64_t>(t >> 64) ^ static_cast<uint64_t>(t);
  }

 private:
  uint64_t key_;
};

// Plain types: element e is lane e % n of word e / n, where n = 8 / sizeof(Elem) and lanes
// are as wide as the element. Whole words go in batches, so hashes overlap and conversions
// vectorize.
template <typename Elem, typename Make>
void fill_elements(std::span<std::byte> dst, uint64_t first, const WordStream& words, Make make) {
  using Lane = std::conditional_t<
      sizeof(Elem) == 1, uint8_t,
      std::conditional_t<sizeof(Elem) == 2, uint16_t,
                         std::conditional_t<sizeof(Elem) == 4, uint32_t, uint64_t>>>;
  constexpr uint64_t kPerWord = 8 / sizeof(Elem);
  constexpr uint64_t kBatchWords = 16;
  constexpr uint64_t kBatch = kBatchWords * kPerWord;
  const uint64_t n = dst.size() / sizeof(Elem);
  auto put = [&](uint64_t i, Elem v) { std::memcpy(dst.data() + i * sizeof(Elem), &v, sizeof v); };
  auto single = [&](uint64_t i) {
    const uint64_t e = first + i;
    Lane lanes[kPerWord];
    const uint64_t w = words.word(e / kPerWord);
    std::memcpy(lanes, &w, sizeof w);
    put(i, make(lanes[e % kPerWord]));
  };
  uint64_t i = 0;
  for (; i < n && (first + i) % kPerWord != 0; ++i) single(i);
  for (; n - i >= kBatch; i += kBatch) {
    uint64_t w[kBatchWords];
    for (uint64_t k = 0; k < kBatchWords; ++k) w[k] = words.word((first + i) / kPerWord + k);
    Lane lanes[kBatch];
    std::memcpy(lanes, w, sizeof w);
    Elem out[kBatch];
    for (uint64_t e = 0; e < kBatch; ++e) out[e] = make(lanes[e]);
    std::memcpy(dst.data() + i * sizeof(Elem), out, sizeof out);
  }
  for (; i < n; ++i) single(i);
}

// Maps `bits` (uniform over `kBits` bits) to [0, range) by multiply-shift.
template <unsigned kBits>
uint64_t below(uint64_t bits, uint64_t range) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(bits) * range) >> kBits);
}

template <typename Int>
void fill_integers(std::span<std::byte> dst, uint64_t first, const WordStream& words, float scale) {
  constexpr unsigned kBits = 8 * sizeof(Int);
  constexpr bool kSigned = std::is_signed_v<Int>;
  const uint64_t bound = static_cast<uint64_t>(std::floor(scale));
  const uint64_t range = kSigned ? 2 * bound + 1 : bound + 1;
  // Signed values are v - bound, wrapped from uint64_t (two's complement, like the cast).
  const uint64_t offset = kSigned ? bound : 0;
  fill_elements<Int>(dst, first, words, [&](uint64_t bits) {
    return static_cast<Int>(below<kBits>(bits, range) - offset);
  });
}

// Uniform in [-1, 1) from `kBits` random bits; exact in float for kBits <= 24.
template <unsigned kBits>
float symmetric_unit(uint32_t bits) {
  static_assert(kBits <= 24);
  constexpr int32_t kHalf = int32_t{1} << (kBits - 1);
  return static_cast<float>(static_cast<int32_t>(bits) - kHalf) * (1.0f / kHalf);
}

// F8 values are too coarse to round uniform floats into a range well; instead pick uniformly
// among the codes already in it.
template <float (*kDecode)(uint8_t)>
void fill_f8(std::span<std::byte> dst, uint64_t first, const WordStream& words, float scale) {
  std::array<uint8_t, 256> codes;
  uint32_t count = 0;
  for (uint32_t c = 0; c < 256; ++c) {
    const float v = kDecode(static_cast<uint8_t>(c));
    if (std::isfinite(v) && std::fabs(v) <= scale) codes[count++] = static_cast<uint8_t>(c);
  }
  fill_elements<uint8_t>(dst, first, words,
                         [&](uint64_t bits) { return codes[below<8>(bits, count)]; });
}

// The f16 nearest to x that is not larger in magnitude, so a block's stated bound holds.
uint16_t f16_toward_zero(float x) {
  const uint16_t h = f32_to_f16(x);
  return std::fabs(f16_to_f32(h)) > std::fabs(x) ? static_cast<uint16_t>(h - 1) : h;
}

// Random draws for one block's scale fields.
class ScaleDraw {
 public:
  explicit ScaleDraw(uint64_t bits) : bits_(bits) {}
  // In [0.5, 0.9), from 16-bit lane 0, 1 or 2.
  float factor(int lane) const {
    return 0.5f + 0.4f * static_cast<float>((bits_ >> (16 * lane)) & 0xFFFF) * 0x1p-16f;
  }
  float sign() const { return bits_ >> 63 ? -1.0f : 1.0f; }

 private:
  uint64_t bits_;
};

// Block b takes words b*W .. b*W + W-1: the first W-1 give its bytes, the last its scales.
template <typename Block, typename SetScales>
void fill_blocks(std::span<std::byte> dst, uint64_t first, const WordStream& words,
                 SetScales set_scales) {
  constexpr uint64_t kByteWords = (sizeof(Block) + 7) / 8;
  constexpr uint64_t kWords = kByteWords + 1;
  const uint64_t n = dst.size() / sizeof(Block);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t base = (first + i) * kWords;
    uint64_t raw[kByteWords];
    for (uint64_t k = 0; k < kByteWords; ++k) raw[k] = words.word(base + k);
    Block b;
    std::memcpy(&b, raw, sizeof(Block));
    set_scales(b, ScaleDraw(words.word(base + kByteWords)));
    std::memcpy(dst.data() + i * sizeof(Block), &b, sizeof(Block));
  }
}

// For d * q with |q| <= q_max: |values| <= 0.9 * scale.
template <typename Block>
void fill_symmetric(std::span<std::byte> dst, uint64_t first, const WordStream& words, float scale,
                    float q_max) {
  const float step = scale / q_max;
  fill_blocks<Block>(dst, first, words, [&](Block& b, const ScaleDraw& draw) {
    b.d = f16_toward_zero(draw.sign() * draw.factor(0) * step);
  });
}

// For d * sc * q + m (Q4_1, Q5_1: sc = 1, m = field m) or d * sc * q - dmin * mn (K-quants),
// all factors non-negative: values lie in [-0.9 * scale, 0.9 * scale].
template <typename Block>
void fill_affine(std::span<std::byte> dst, uint64_t first, const WordStream& words, float scale,
                 float scaled_q_max, float min_max) {
  const float step = scale / scaled_q_max;
  const float min_step = scale / min_max;
  fill_blocks<Block>(dst, first, words, [&](Block& b, const ScaleDraw& draw) {
    b.d = f16_toward_zero(draw.factor(0) * step);
    const uint16_t offset = f16_toward_zero(draw.factor(1) * min_step);
    if constexpr (requires { &Block::dmin; }) {
      b.dmin = offset;
    } else {
      b.m = static_cast<uint16_t>(offset | 0x8000u);  // m is negative
    }
  });
}

void fill_q8_k(std::span<std::byte> dst, uint64_t first, const WordStream& words, float scale) {
  const float step = scale / 128.0f;
  fill_blocks<BlockQ8_K>(dst, first, words, [&](BlockQ8_K& b, const ScaleDraw& draw) {
    b.d = draw.sign() * draw.factor(0) * step;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += b.qs[g * 16 + j];
      b.bsums[g] = static_cast<int16_t>(sum);
    }
  });
}

bool f16_limited(DType t) {
  return t == DType::F16 || (dtype_info(t).quantized && t != DType::Q8_K);
}

// 2^bits for unsigned and 2^(bits-1) for signed integer types: scales whose whole part reaches
// it do not fit. 0 for other types.
double integer_limit(DType t) {
  switch (t) {
    case DType::I64:
      return std::ldexp(1.0, 63);
    case DType::I32:
      return std::ldexp(1.0, 31);
    case DType::I16:
      return std::ldexp(1.0, 15);
    case DType::I8:
      return std::ldexp(1.0, 7);
    case DType::U64:
      return std::ldexp(1.0, 64);
    case DType::U32:
      return std::ldexp(1.0, 32);
    case DType::U16:
      return std::ldexp(1.0, 16);
    case DType::U8:
      return std::ldexp(1.0, 8);
    default:
      return 0;
  }
}

void check_arguments(DType t, size_t bytes, float scale) {
  const DTypeInfo& info = dtype_info(t);
  if (bytes % info.block_bytes != 0)
    fail("fill_random {}: {} bytes is not a whole number of {}-byte blocks", info.name, bytes,
         info.block_bytes);
  if (!(scale > 0.0f) || !std::isfinite(scale))
    fail("fill_random {}: scale {} must be positive and finite", info.name, scale);
  if (f16_limited(t) && scale > 65504.0f)
    fail("fill_random {}: scale {} exceeds the f16 range (65504)", info.name, scale);
  const double limit = integer_limit(t);
  if (limit > 0 && std::floor(static_cast<double>(scale)) >= limit)
    fail("fill_random {}: scale {} exceeds the type's range", info.name, scale);
}

}  // namespace

void fill_random(DType t, std::span<std::byte> dst, uint64_t seed, float scale,
                 uint64_t first_block) {
  check_arguments(t, dst.size(), scale);
  const WordStream words(seed);
  switch (t) {
    case DType::F64:
      return fill_elements<double>(dst, first_block, words, [&](uint64_t bits) {
        const double unit =
            static_cast<double>(static_cast<int64_t>(bits >> 11) - (int64_t{1} << 52)) * 0x1p-52;
        return unit * static_cast<double>(scale);
      });
    case DType::F32:
      return fill_elements<uint32_t>(dst, first_block, words, [&](uint32_t bits) {
        return std::bit_cast<uint32_t>(symmetric_unit<24>(bits >> 8) * scale);
      });
    case DType::F16:
      return fill_elements<uint16_t>(dst, first_block, words, [&](uint16_t bits) {
        return f32_to_f16(symmetric_unit<16>(bits) * scale);
      });
    case DType::BF16:
      return fill_elements<uint16_t>(dst, first_block, words, [&](uint16_t bits) {
        return f32_to_bf16(symmetric_unit<16>(bits) * scale);
      });
    case DType::F8_E4M3:
      return fill_f8<f8_e4m3_to_f32>(dst, first_block, words, scale);
    case DType::F8_E5M2:
      return fill_f8<f8_e5m2_to_f32>(dst, first_block, words, scale);
    case DType::I64:
      return fill_integers<int64_t>(dst, first_block, words, scale);
    case DType::I32:
      return fill_integers<int32_t>(dst, first_block, words, scale);
    case DType::I16:
      return fill_integers<int16_t>(dst, first_block, words, scale);
    case DType::I8:
      return fill_integers<int8_t>(dst, first_block, words, scale);
    case DType::U64:
      return fill_integers<uint64_t>(dst, first_block, words, scale);
    case DType::U32:
      return fill_integers<uint32_t>(dst, first_block, words, scale);
    case DType::U16:
      return fill_integers<uint16_t>(dst, first_block, words, scale);
    case DType::U8:
      return fill_integers<uint8_t>(dst, first_block, words, scale);
    case DType::BOOL:
      return fill_elements<uint8_t>(dst, first_block, words,
                                    [](uint64_t bits) { return static_cast<uint8_t>(bits & 1); });
    case DType::Q4_0:
      return fill_symmetric<BlockQ4_0>(dst, first_block, words, scale, 8);
    case DType::Q4_1:
      return fill_affine<BlockQ4_1>(dst, first_block, words, scale, 15, 1);
    case DType::Q5_0:
      return fill_symmetric<BlockQ5_0>(dst, first_block, words, scale, 16);
    case DType::Q5_1:
      return fill_affine<BlockQ5_1>(dst, first_block, words, scale, 31, 1);
    case DType::Q8_0:
      return fill_symmetric<BlockQ8_0>(dst, first_block, words, scale, 128);
    case DType::Q2_K:
      return fill_affine<BlockQ2_K>(dst, first_block, words, scale, 15 * 3, 15);
    case DType::Q3_K:
      return fill_symmetric<BlockQ3_K>(dst, first_block, words, scale, 32 * 4);
    case DType::Q4_K:
      return fill_affine<BlockQ4_K>(dst, first_block, words, scale, 63 * 15, 63);
    case DType::Q5_K:
      return fill_affine<BlockQ5_K>(dst, first_block, words, scale, 63 * 31, 63);
    case DType::Q6_K:
      return fill_symmetric<BlockQ6_K>(dst, first_block, words, scale, 128 * 32);
    case DType::Q8_K:
      return fill_q8_k(dst, first_block, words, scale);
    case DType::IQ4_NL:
      return fill_symmetric<BlockIQ4_NL>(dst, first_block, words, scale, 127);
    case DType::IQ4_XS:
      return fill_symmetric<BlockIQ4_XS>(dst, first_block, words, scale, 32 * 127);
  }
  fail("fill_random: unknown dtype id {}", static_cast<int>(t));
}

}  // namespace ebb
