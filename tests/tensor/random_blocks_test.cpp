#include "tensor/random_blocks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "tensor/dequantize.h"
#include "tensor/quant_blocks.h"

namespace ebb {
namespace {

constexpr uint64_t kBlocks = 203;

std::vector<std::byte> filled(DType t, uint64_t seed, float scale, uint64_t blocks = kBlocks,
                              uint64_t first_block = 0) {
  std::vector<std::byte> bytes(blocks * dtype_info(t).block_bytes);
  fill_random(t, bytes, seed, scale, first_block);
  return bytes;
}

std::vector<float> decoded(DType t, const std::vector<std::byte>& bytes) {
  const DTypeInfo& info = dtype_info(t);
  std::vector<float> values(bytes.size() / info.block_bytes * info.block_elems);
  dequantize_to_f32(t, bytes.data(), values.data(), values.size());
  return values;
}

bool is_integer(DType t) {
  return t >= DType::I64 && t <= DType::U8;
}

// The stated bound, loosened only by F16/BF16 rounding of values drawn inside it.
double bound(DType t, float scale) {
  if (t == DType::BOOL) return 1.0;
  if (is_integer(t)) return std::floor(scale);
  if (t == DType::F16) return scale * (1.0 + 0x1p-11);
  if (t == DType::BF16) return scale * (1.0 + 0x1p-8);
  return scale;
}

class EveryDType : public testing::TestWithParam<int> {
 protected:
  DType type() const { return static_cast<DType>(GetParam()); }
};

TEST_P(EveryDType, SameSeedSameBytesOtherSeedOtherBytes) {
  const DType t = type();
  EXPECT_EQ(filled(t, 1, 1.0f), filled(t, 1, 1.0f));
  EXPECT_NE(filled(t, 1, 1.0f), filled(t, 2, 1.0f));
}

// Chunks of any size, filled in any order, give the bytes of a single call.
TEST_P(EveryDType, ChunksEqualOneCall) {
  const DType t = type();
  const uint32_t block_bytes = dtype_info(t).block_bytes;
  const auto whole = filled(t, 99, 3.0f);
  std::vector<std::byte> chunked(whole.size());
  std::vector<std::pair<uint64_t, uint64_t>> chunks;
  for (uint64_t first = 0, size = 1; first < kBlocks; first += size, size = size * 2 + 1)
    chunks.emplace_back(first, std::min(size, kBlocks - first));
  for (auto it = chunks.rbegin(); it != chunks.rend(); ++it) {
    const auto [first, count] = *it;
    fill_random(t, std::span(chunked).subspan(first * block_bytes, count * block_bytes), 99, 3.0f,
                first);
  }
  EXPECT_EQ(chunked, whole) << dtype_name(t);
}

TEST_P(EveryDType, ValuesAreFiniteAndWithinScale) {
  const DType t = type();
  for (float scale : {0.02f, 1.0f, 250.0f}) {
    if (t == DType::I8 && scale >= 128.0f) continue;
    const auto values = decoded(t, filled(t, 5, scale, 2000));
    const double limit = bound(t, scale);
    double largest = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_TRUE(std::isfinite(values[i])) << dtype_name(t) << " element " << i;
      ASSERT_LE(std::fabs(values[i]), limit)
          << dtype_name(t) << " scale " << scale << " element " << i;
      largest = std::max(largest, std::fabs(static_cast<double>(values[i])));
    }
    // Not degenerate: the values reach a good part of the range.
    EXPECT_GE(largest, 0.3 * limit) << dtype_name(t) << " scale " << scale;
  }
}

INSTANTIATE_TEST_SUITE_P(All, EveryDType, testing::Range(0, kDTypeCount), [](const auto& info) {
  return std::string(dtype_name(static_cast<DType>(info.param)));
});

TEST(FillRandom, Q8KBlockSumsMatchQuants) {
  const auto bytes = filled(DType::Q8_K, 3, 1.0f, 50);
  for (size_t b = 0; b < 50; ++b) {
    BlockQ8_K block;
    std::memcpy(&block, bytes.data() + b * sizeof block, sizeof block);
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += block.qs[g * 16 + j];
      EXPECT_EQ(block.bsums[g], sum) << "block " << b << " group " << g;
    }
  }
}

TEST(FillRandom, UnsignedAndBoolStayNonNegative) {
  for (DType t : {DType::U8, DType::U16, DType::U32, DType::U64, DType::BOOL})
    for (float v : decoded(t, filled(t, 8, 100.0f))) ASSERT_GE(v, 0.0f) << dtype_name(t);
}

TEST(FillRandom, SignedIntegersCoverTheirRange) {
  for (DType t : {DType::I8, DType::I16, DType::I32, DType::I64}) {
    std::set<float> seen;
    for (float v : decoded(t, filled(t, 4, 3.5f))) seen.insert(v);
    EXPECT_EQ(seen, (std::set<float>{-3, -2, -1, 0, 1, 2, 3})) << dtype_name(t);
  }
}

TEST(FillRandom, RejectsBadArguments) {
  std::vector<std::byte> bytes(100);
  EXPECT_THAT([&] { fill_random(DType::Q4_K, bytes, 1, 1.0f); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("Q4_K")));
  std::vector<std::byte> one_block(144);
  EXPECT_THROW(fill_random(DType::Q4_K, one_block, 1, 0.0f), Error);
  EXPECT_THROW(fill_random(DType::Q4_K, one_block, 1, -1.0f), Error);
  EXPECT_THROW(fill_random(DType::Q4_K, one_block, 1, NAN), Error);
  EXPECT_THROW(fill_random(DType::F32, one_block, 1, INFINITY), Error);
  EXPECT_THROW(fill_random(DType::Q4_K, one_block, 1, 70000.0f), Error);
  EXPECT_THROW(fill_random(DType::F16, one_block, 1, 70000.0f), Error);
  EXPECT_THROW(fill_random(DType::I8, one_block, 1, 128.0f), Error);
  EXPECT_THROW(fill_random(DType::U8, one_block, 1, 256.0f), Error);
  EXPECT_NO_THROW(fill_random(DType::U8, one_block, 1, 255.0f));
  EXPECT_NO_THROW(fill_random(DType::F32, one_block, 1, 1e30f));
  EXPECT_NO_THROW(fill_random(DType::I64, std::span(one_block).first(136), 1, 9e18f));
}

}  // namespace
}  // namespace ebb
