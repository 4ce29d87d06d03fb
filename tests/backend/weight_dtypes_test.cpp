// linear and conv2d with weights in every dtype checkpoints store, against naive products of
// the same weights decoded by dequantize_to_f32. The reference reads exactly the values the op
// reads, so the F32 bound (1e-5) holds for every dtype; quantization error itself is the
// dequantizer's business (tests/tensor).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "op_test_util.h"
#include "tensor/dequantize.h"
#include "tensor/random_blocks.h"

namespace ebb {
namespace {

constexpr double kTolerance = 1e-5;
constexpr uint64_t kMiB = uint64_t(1) << 20;

struct RandomWeight {
  Tensor tensor;
  std::vector<float> decoded;
};

// A weight of `shape` in dtype `t` with random valid contents, and its values as F32.
RandomWeight random_weight(Backend& be, DType t, const Shape& shape, uint64_t seed) {
  Tensor w = be.empty(shape, t, MemoryTag::Weights);
  std::vector<std::byte> raw(w.nbytes());
  fill_random(t, raw, seed, 0.5f);
  be.write(w, raw.data(), raw.size());
  std::vector<float> decoded(w.numel());
  dequantize_to_f32(t, raw.data(), decoded.data(), decoded.size());
  return {w, decoded};
}

class WeightDtypes : public ::testing::TestWithParam<DType> {
 protected:
  CpuBackend be{2};
};

INSTANTIATE_TEST_SUITE_P(All, WeightDtypes,
                         ::testing::Values(DType::F16, DType::BF16, DType::F8_E4M3, DType::Q4_0,
                                           DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q4_K,
                                           DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST_P(WeightDtypes, LinearMatchesNaiveOnDecodedWeights) {
  const int64_t m = 5, k = 512, n = 48;
  const auto x = test::random_floats(m * k, 1);
  const auto b = test::random_floats(n, 2);
  const RandomWeight w = random_weight(be, GetParam(), {n, k}, 3);
  Tensor out = be.linear(test::upload(be, {m, k}, x), w.tensor, test::upload(be, {n}, b));
  EXPECT_LE(
      test::relative_error(test::download(be, out), test::linear_ref(x, w.decoded, b, m, k, n)),
      kTolerance);
}

TEST(WeightRows, LargeQuantizedWeightsConvertInBoundedBlocks) {
  CpuBackend be(2);
  // 1100 rows of 4096 values are 17.6 MB as F32: more than one block of converted rows.
  const int64_t m = 3, k = 4096, n = 1100;
  const auto x = test::random_floats(m * k, 4);
  const RandomWeight w = random_weight(be, DType::Q8_0, {n, k}, 5);
  Tensor out = be.linear(test::upload(be, {m, k}, x), w.tensor, {});
  EXPECT_LE(
      test::relative_error(test::download(be, out), test::linear_ref(x, w.decoded, {}, m, k, n)),
      kTolerance);
  EXPECT_LE(be.arena().stats().peak[int(MemoryTag::Scratch)], 16 * kMiB);
}

TEST(WeightRows, Conv2dWithF16WeightsInSeveralBlocks) {
  CpuBackend be(2);
  // 400 × 11520 F32 values are 18.4 MB; the column tile and weight block stay bounded.
  const test::ConvCase c{1, 1280, 3, 3, 400, 3, 3, Conv2dGeometry::uniform(1, 1)};
  const auto x = test::random_floats(c.c * c.h * c.w, 6);
  const RandomWeight w = random_weight(be, DType::F16, {c.o, c.c, 3, 3}, 7);
  const RandomWeight b = random_weight(be, DType::BF16, {c.o}, 8);
  Tensor out = be.conv2d(test::upload(be, {1, c.c, c.h, c.w}, x), w.tensor, b.tensor, c.g);
  EXPECT_LE(
      test::relative_error(test::download(be, out), test::conv2d_ref(c, x, w.decoded, b.decoded)),
      kTolerance);
  EXPECT_LE(be.arena().stats().peak[int(MemoryTag::Scratch)], 33 * kMiB);
}

TEST(WeightRows, NormParametersMayBeHalfPrecision) {
  CpuBackend be(2);
  const auto x = test::random_floats(4 * 96, 9);
  const RandomWeight g = random_weight(be, DType::F16, {96}, 10);
  const RandomWeight b = random_weight(be, DType::BF16, {96}, 11);
  Tensor out = be.layer_norm(test::upload(be, {4, 96}, x), g.tensor, b.tensor, 1e-5f);
  EXPECT_LE(test::relative_error(test::download(be, out),
                                 test::row_norm_ref(x, 96, false, g.decoded, b.decoded, 1e-5)),
            kTolerance);
}

TEST(WeightRows, IntegerWeightsAreRefused) {
  CpuBackend be(1);
  EXPECT_THAT(
      [&] {
        be.linear(be.empty({2, 8}), be.empty({4, 8}, DType::I32), {});
      },
      ::testing::ThrowsMessage<Error>(::testing::HasSubstr("w I32[4, 8]")));
}

}  // namespace
}  // namespace ebb
