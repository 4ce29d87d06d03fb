#include "backend/cpu/kernels/timestep_embedding.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernel_test_util.h"

namespace ebb::cpu {
namespace {

// The formula in double precision, straight from its definition.
std::vector<double> reference(const std::vector<float>& t, int64_t dim,
                              const TimestepEmbeddingParams& p) {
  const int64_t half = dim / 2;
  std::vector<double> out(t.size() * dim, 0.0);
  for (size_t r = 0; r < t.size(); ++r)
    for (int64_t i = 0; i < half; ++i) {
      const double freq = std::exp(-std::log(static_cast<double>(p.max_period)) * i /
                                   (half - p.downscale_freq_shift));
      const double arg = p.scale * (static_cast<double>(t[r]) * p.time_factor) * freq;
      const double first = p.flip_sin_to_cos ? std::cos(arg) : std::sin(arg);
      const double second = p.flip_sin_to_cos ? std::sin(arg) : std::cos(arg);
      out[r * dim + i] = first;
      out[r * dim + half + i] = second;
    }
  return out;
}

TEST(TimestepEmbedding, MatchesDefinitionForEachVariant) {
  const std::vector<float> sd_steps{999.0f, 500.5f, 1.0f, 0.0f, 761.0f};
  const std::vector<float> flux_steps{1.0f, 0.5f, 0.0321f, 0.0f};
  struct Case {
    std::vector<float> t;
    int64_t dim;
    TimestepEmbeddingParams params;
  };
  const Case cases[] = {
      {sd_steps, 320, sd_timestep_params()},
      {sd_steps, 256, TimestepEmbeddingParams{}},  // diffusers' defaults: sin first, shift 1
      {flux_steps, 256, flux_timestep_params()},
      {sd_steps, 33, {false, 0.5f, 2.0f, 5000.0f, 1.0f}},
  };
  for (const auto& c : cases) {
    std::vector<float> out(c.t.size() * c.dim, -1.0f);
    timestep_embedding(c.t.data(), static_cast<int64_t>(c.t.size()), c.dim, c.params, out.data());
    const auto want = reference(c.t, c.dim, c.params);
    // Arguments reach 1000 rad: rounding them to float is worth ~3e-5 absolute already.
    for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], want[i], 1e-4) << "index " << i;
    if (c.dim % 2 == 1) {
      for (size_t r = 0; r < c.t.size(); ++r) EXPECT_EQ(out[r * c.dim + c.dim - 1], 0.0f);
    }
  }
}

TEST(TimestepEmbedding, FlipPutsCosineFirst) {
  const float t = 0.0f;
  std::vector<float> out(8);
  timestep_embedding(&t, 1, 8, sd_timestep_params(), out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 1, 1, 1, 0, 0, 0, 0}));
}

TEST(TimestepEmbedding, RejectsBadParameters) {
  const float t = 1.0f;
  float out[4];
  EXPECT_THROW(timestep_embedding(&t, 1, 1, {}, out), Error);
  EXPECT_THROW(timestep_embedding(&t, 1, 2, {}, out), Error);  // half 1 - shift 1 = 0
  EXPECT_THROW(timestep_embedding(&t, -1, 4, {}, out), Error);
}

}  // namespace
}  // namespace ebb::cpu
