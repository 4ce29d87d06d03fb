#include "tensor/dequantize.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant_fixtures.h"
#include "support/random_bytes.h"
#include "tensor/float_convert.h"
#include "tensor/quant_blocks.h"

namespace ebb {
namespace {

using test::random_bytes;

std::vector<float> decode(DType t, const std::vector<std::byte>& src, uint64_t elems) {
  std::vector<float> out(elems);
  dequantize_to_f32(t, src.data(), out.data(), elems);
  return out;
}

template <typename Block>
void expect_layout(DType t) {
  EXPECT_EQ(sizeof(Block), dtype_info(t).block_bytes) << dtype_name(t);
  EXPECT_EQ(Block::kElems, dtype_info(t).block_elems) << dtype_name(t);
}

TEST(Dequantize, BlockLayoutsMatchDTypeTable) {
  expect_layout<BlockQ4_0>(DType::Q4_0);
  expect_layout<BlockQ4_1>(DType::Q4_1);
  expect_layout<BlockQ5_0>(DType::Q5_0);
  expect_layout<BlockQ5_1>(DType::Q5_1);
  expect_layout<BlockQ8_0>(DType::Q8_0);
  expect_layout<BlockQ2_K>(DType::Q2_K);
  expect_layout<BlockQ3_K>(DType::Q3_K);
  expect_layout<BlockQ4_K>(DType::Q4_K);
  expect_layout<BlockQ5_K>(DType::Q5_K);
  expect_layout<BlockQ6_K>(DType::Q6_K);
  expect_layout<BlockQ8_K>(DType::Q8_K);
  expect_layout<BlockIQ4_NL>(DType::IQ4_NL);
  expect_layout<BlockIQ4_XS>(DType::IQ4_XS);
}

class MatchesGgufPy : public testing::TestWithParam<DType> {};

// The fixtures hold gguf.quants.dequantize's output for random blocks; results must be
// bit-identical, not merely close.
TEST_P(MatchesGgufPy, BitExact) {
  const DType t = GetParam();
  const std::string name(dtype_name(t));
  const auto blocks = test::read_quant_fixture<std::byte>(name + ".bin");
  const auto want = test::read_quant_fixture<uint32_t>(name + ".f32");
  const DTypeInfo& info = dtype_info(t);
  ASSERT_EQ(blocks.size() % info.block_bytes, 0u);
  ASSERT_EQ(want.size(), blocks.size() / info.block_bytes * info.block_elems);
  ASSERT_GE(want.size(), 16u * info.block_elems);
  const auto got = decode(t, blocks, want.size());
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), want[i])
        << name << " element " << i << " (block " << i / info.block_elems << "): got " << got[i]
        << ", gguf-py " << std::bit_cast<float>(want[i]);
}

INSTANTIATE_TEST_SUITE_P(BlockTypes, MatchesGgufPy,
                         testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                         DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                                         DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// gguf-py has no Q8_K dequantizer: compare with the definition, d * q.
TEST(Dequantize, Q8KMatchesNaiveReference) {
  constexpr int kBlocks = 64;
  auto src = random_bytes(kBlocks * sizeof(BlockQ8_K), 11);
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> scale(-2.0f, 2.0f);
  std::vector<float> want;
  for (int b = 0; b < kBlocks; ++b) {
    BlockQ8_K block;
    std::memcpy(&block, src.data() + b * sizeof block, sizeof block);
    block.d = scale(rng);
    std::memcpy(src.data() + b * sizeof block, &block, sizeof block);
    for (int8_t q : block.qs) want.push_back(block.d * static_cast<float>(q));
  }
  EXPECT_EQ(decode(DType::Q8_K, src, want.size()), want);
}

template <typename T, typename Ref>
void expect_plain(DType t, Ref ref) {
  constexpr size_t kElems = 4099;
  const auto src = random_bytes(kElems * sizeof(T), 20 + static_cast<int>(t));
  const auto got = decode(t, src, kElems);
  for (size_t i = 0; i < kElems; ++i) {
    T v;
    std::memcpy(&v, src.data() + i * sizeof(T), sizeof(T));
    const float want = ref(v);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got[i])) << dtype_name(t) << " " << i;
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want))
          << dtype_name(t) << " " << i;
    }
  }
}

template <typename T>
void expect_cast(DType t) {
  expect_plain<T>(t, [](T v) { return static_cast<float>(v); });
}

TEST(Dequantize, PlainTypesConvertEachElement) {
  expect_cast<double>(DType::F64);
  expect_plain<uint32_t>(DType::F32, [](uint32_t v) { return std::bit_cast<float>(v); });
  expect_plain<uint16_t>(DType::F16, f16_to_f32);
  expect_plain<uint16_t>(DType::BF16, bf16_to_f32);
  expect_plain<uint8_t>(DType::F8_E4M3, f8_e4m3_to_f32);
  expect_plain<uint8_t>(DType::F8_E5M2, f8_e5m2_to_f32);
  expect_cast<int64_t>(DType::I64);
  expect_cast<int32_t>(DType::I32);
  expect_cast<int16_t>(DType::I16);
  expect_cast<int8_t>(DType::I8);
  expect_cast<uint64_t>(DType::U64);
  expect_cast<uint32_t>(DType::U32);
  expect_cast<uint16_t>(DType::U16);
  expect_cast<uint8_t>(DType::U8);
  expect_plain<uint8_t>(DType::BOOL, [](uint8_t v) { return v ? 1.0f : 0.0f; });
}

class EveryDType : public testing::TestWithParam<int> {};

// Loading code decodes rows or block ranges separately, from unaligned file offsets.
TEST_P(EveryDType, PiecesFromUnalignedSourceEqualWhole) {
  const DType t = static_cast<DType>(GetParam());
  const DTypeInfo& info = dtype_info(t);
  const uint64_t blocks = 37;
  const uint64_t elems = blocks * info.block_elems;
  const auto src = random_bytes(blocks * info.block_bytes + 1, 30 + GetParam());
  std::vector<float> whole(elems);
  dequantize_to_f32(t, src.data(), whole.data(), elems);

  std::vector<std::byte> shifted(src.size() + 1);
  std::memcpy(shifted.data() + 1, src.data(), src.size());
  std::vector<float> pieces(elems);
  for (uint64_t first = 0; first < blocks;) {
    const uint64_t count = std::min<uint64_t>(1 + first % 5, blocks - first);
    dequantize_to_f32(t, shifted.data() + 1 + first * info.block_bytes,
                      pieces.data() + first * info.block_elems, count * info.block_elems);
    first += count;
  }
  EXPECT_EQ(std::memcmp(whole.data(), pieces.data(), elems * sizeof(float)), 0) << info.name;
}

TEST_P(EveryDType, ZeroElementsIsFine) {
  dequantize_to_f32(static_cast<DType>(GetParam()), nullptr, nullptr, 0);
}

INSTANTIATE_TEST_SUITE_P(All, EveryDType, testing::Range(0, kDTypeCount), [](const auto& info) {
  return std::string(dtype_name(static_cast<DType>(info.param)));
});

TEST(Dequantize, RejectsPartialBlocks) {
  std::vector<std::byte> src(1024);
  std::vector<float> dst(256);
  try {
    dequantize_to_f32(DType::Q4_K, src.data(), dst.data(), 100);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("Q4_K"));
    EXPECT_THAT(e.what(), testing::HasSubstr("100"));
    EXPECT_THAT(e.what(), testing::HasSubstr("256"));
  }
  EXPECT_THROW(dequantize_to_f32(DType::Q8_0, src.data(), dst.data(), 33), Error);
}

}  // namespace
}  // namespace ebb
