#include "pipeline/torch_rng.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace ebb {
namespace {

// Fixtures from tools/reference/make_rng_fixtures.py (real torch.randn on a CPU generator).
nlohmann::json load_fixtures() {
  std::ifstream in(std::string(EBB_TEST_DATA_DIR) + "/pipeline/torch_randn.json");
  EXPECT_TRUE(in) << "missing tests/data/pipeline/torch_randn.json";
  return nlohmann::json::parse(in);
}

uint64_t fnv1a64(const std::vector<uint32_t>& words) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t w : words) {
    for (int byte = 0; byte < 4; ++byte) {
      h = (h ^ ((w >> (8 * byte)) & 0xffu)) * 0x100000001b3ull;
    }
  }
  return h;
}

TEST(TorchCpuGenerator, MatchesTorchRandnBitForBit) {
  const nlohmann::json fixtures = load_fixtures();
  ASSERT_GT(fixtures["cases"].size(), 20u);
  for (const auto& c : fixtures["cases"]) {
    const uint64_t seed = std::stoull(c["seed"].get<std::string>());
    TorchCpuGenerator generator(seed);
    int call_index = 0;
    for (const auto& call : c["calls"]) {
      SCOPED_TRACE("seed " + std::to_string(seed) + ", call " + std::to_string(call_index++) +
                   ", size " + std::to_string(call["size"].get<size_t>()));
      std::vector<float> out(call["size"].get<size_t>());
      generator.randn(out);
      std::vector<uint32_t> bits(out.size());
      for (size_t i = 0; i < out.size(); ++i) bits[i] = std::bit_cast<uint32_t>(out[i]);
      if (call.contains("bits")) {
        EXPECT_EQ(bits, call["bits"].get<std::vector<uint32_t>>());
      } else {
        for (const auto& sample : call["samples"]) {
          EXPECT_EQ(bits[sample[0].get<size_t>()], sample[1].get<uint32_t>())
              << "index " << sample[0];
        }
        EXPECT_EQ(fnv1a64(bits), std::stoull(call["fnv1a64"].get<std::string>(), nullptr, 16));
      }
    }
  }
}

TEST(TorchCpuGenerator, SeedUsesLow32Bits) {
  std::vector<float> a(40), b(40);
  TorchCpuGenerator(5).randn(a);
  TorchCpuGenerator((uint64_t{1} << 32) + 5).randn(b);
  EXPECT_EQ(a, b);
}

TEST(TorchCpuGenerator, EmptyCallLeavesStreamUntouched) {
  std::vector<float> a(3), b(3);
  TorchCpuGenerator g1(11), g2(11);
  g1.randn(std::span<float>());
  g1.randn(a);
  g2.randn(b);
  EXPECT_EQ(a, b);
}

// Statistical sanity over many draws, independent of the fixtures: mean ~ 0, variance ~ 1,
// and no NaN/inf anywhere (log and sqrt see every uniform, including 0).
TEST(TorchCpuGenerator, LargeDrawIsStandardNormal) {
  std::vector<float> v(1 << 18);
  TorchCpuGenerator(2024).randn(v);
  double sum = 0, sum_sq = 0;
  for (float x : v) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
    sum_sq += static_cast<double>(x) * x;
  }
  const double mean = sum / v.size();
  const double variance = sum_sq / v.size() - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(variance, 1.0, 0.01);
}

}  // namespace
}  // namespace ebb
