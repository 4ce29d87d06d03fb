// Tiled VAE decode and encode on the tiny SD1 autoencoder: one tile is the untiled pass bit for
// bit, several tiles stay close to it, and tiling lowers the arena's activation peak.
#include "pipeline/vae_tiling.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "pipeline/torch_rng.h"

namespace ebb {
namespace {

const std::string kCheckpoint = std::string(EBB_TEST_DATA_DIR) + "/sd/sd1-tiny.safetensors";

struct Model {
  ModelSource source = ModelSource::open({.model = kCheckpoint});
  Ledger ledger;
  WeightStore store{source, ledger, {}};
  VaeConfig config = vae_config(source, Architecture::SD1);
};

Tensor random_tensor(Backend& backend, const Shape& shape, uint64_t seed) {
  std::vector<float> values(shape_numel(shape));
  TorchCpuGenerator(seed).randn(values);
  Tensor t = backend.empty(shape);
  backend.write(t, values.data(), values.size() * sizeof(float));
  return t;
}

std::vector<float> to_host(Backend& backend, const Tensor& t) {
  std::vector<float> out(t.numel());
  backend.read(t, out.data(), out.size() * sizeof(float));
  return out;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    m = std::max(m, std::fabs(double(a[i]) - b[i]));
  }
  return m;
}

TEST(VaeTiling, TileStartsCoverTheAxisWithTheOverlap) {
  EXPECT_EQ(vae_tile_starts(16, 16, 4), (std::vector<int64_t>{0}));
  EXPECT_EQ(vae_tile_starts(16, 40, 4), (std::vector<int64_t>{0}));
  for (int64_t length = 1; length <= 70; ++length) {
    for (int64_t tile = 1; tile <= 24; ++tile) {
      for (int64_t overlap = 0; overlap < tile; ++overlap) {
        const std::vector<int64_t> s = vae_tile_starts(length, tile, overlap);
        ASSERT_EQ(s.front(), 0);
        ASSERT_EQ(s.back() + std::min(tile, length), length) << length << " " << tile;
        for (size_t i = 1; i < s.size(); ++i) {
          ASSERT_GT(s[i], s[i - 1]);
          ASSERT_GE(s[i - 1] + tile - s[i], overlap) << length << " " << tile << " " << overlap;
        }
      }
    }
  }
  EXPECT_THROW(vae_tile_starts(16, 4, 4), Error);
  EXPECT_THROW(vae_tile_starts(0, 4, 1), Error);
}

// A pass that only looks at each pixel's own neighbourhood-free value gives every tile the same
// numbers as the whole, so the blend must reproduce the untiled result up to the rounding of
// the weights (which sum to one).
TEST(VaeTiling, BlendWeightsSumToOne) {
  CpuBackend backend(1);
  const Tensor x = random_tensor(backend, {2, 3, 19, 23}, 5);
  const auto upsample = [&](const Tensor& t) { return backend.upsample_nearest2x(t); };
  const std::vector<float> whole = to_host(backend, backend.upsample_nearest2x(x));
  for (const VaeTiling tiling : {VaeTiling{5, 2}, VaeTiling{8, 3}, VaeTiling{7, 0}}) {
    const std::vector<float> tiled =
        to_host(backend, vae_tiled_pass(backend, x, 1, 2, tiling, upsample));
    EXPECT_LE(max_abs_diff(whole, tiled), 1e-6 * max_abs(whole))
        << tiling.tile << " " << tiling.overlap;
  }
}

TEST(VaeTiling, OneTileIsTheUntiledPassBitForBit) {
  Model model;
  CpuBackend backend(2);
  const Tensor z = random_tensor(backend, {1, 4, 12, 10}, 7);
  EXPECT_EQ(to_host(backend, vae_decode_tiled(backend, model.store, model.config, z, {12, 4})),
            to_host(backend, vae_decode(backend, model.store, model.config, z)));
  const Tensor image = random_tensor(backend, {1, 3, 24, 20}, 8);
  EXPECT_EQ(to_host(backend,
                    vae_encode_moments_tiled(backend, model.store, model.config, image, {32, 4})),
            to_host(backend, vae_encode_moments(backend, model.store, model.config, image)));
}

double mean_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::fabs(double(a[i]) - b[i]);
  return sum / double(a.size());
}

double mean_abs(const std::vector<float>& v) {
  return mean_abs_diff(v, std::vector<float>(v.size()));
}

// Tiles differ from the whole image beyond the seams: the mid attention block attends within
// the tile only and group norm takes the tile's statistics. The tiny model's random weights
// make that coupling strong (a tile's centre is off by about 0.1 where values average 0.17),
// so the bounds below are loose and mostly check that more overlap brings the blend closer.
TEST(VaeTiling, SeveralTilesApproachTheUntiledPassAsTheOverlapGrows) {
  Model model;
  CpuBackend backend(2);
  const Tensor z = random_tensor(backend, {1, 4, 32, 32}, 9);
  const std::vector<float> whole =
      to_host(backend, vae_decode(backend, model.store, model.config, z));
  std::vector<double> errors;
  for (const VaeTiling tiling : {VaeTiling{16, 4}, VaeTiling{24, 12}}) {
    const std::vector<float> tiled =
        to_host(backend, vae_decode_tiled(backend, model.store, model.config, z, tiling));
    errors.push_back(mean_abs_diff(whole, tiled) / mean_abs(whole));
    fmt::print(
        "decode of 32×32, tiles of {} overlapping by {}: max error {:.3g} of max, mean {:.3g} of "
        "mean\n",
        tiling.tile, tiling.overlap, max_abs_diff(whole, tiled) / max_abs(whole), errors.back());
    EXPECT_LT(max_abs_diff(whole, tiled), 0.35 * max_abs(whole));
  }
  EXPECT_LT(errors[0], 0.35);
  EXPECT_LT(errors[1], 0.6 * errors[0]);

  const Tensor image = random_tensor(backend, {1, 3, 64, 64}, 10);
  const std::vector<float> moments =
      to_host(backend, vae_encode_moments(backend, model.store, model.config, image));
  const std::vector<float> tiled = to_host(
      backend, vae_encode_moments_tiled(backend, model.store, model.config, image, {16, 4}));
  fmt::print(
      "encode of 64×64, tiles of 16 overlapping by 4: max error {:.3g} of max, mean {:.3g} of "
      "mean\n",
      max_abs_diff(moments, tiled) / max_abs(moments),
      mean_abs_diff(moments, tiled) / mean_abs(moments));
  EXPECT_LT(max_abs_diff(moments, tiled), 0.3 * max_abs(moments));
  EXPECT_LT(mean_abs_diff(moments, tiled), 0.3 * mean_abs(moments));
}

uint64_t activation_peak(Backend& backend, const std::function<Tensor()>& pass) {
  backend.arena().reset_peaks();
  const Tensor out = pass();
  return backend.arena().stats().peak[static_cast<int>(MemoryTag::Activations)];
}

TEST(VaeTiling, TilingLowersTheActivationPeakWithinTheEstimate) {
  Model model;
  CpuBackend backend(2);
  const Tensor z = random_tensor(backend, {1, 4, 48, 48}, 11);
  const int64_t f = model.config.downscale();
  const uint64_t whole =
      activation_peak(backend, [&] { return vae_decode(backend, model.store, model.config, z); });
  const VaeTiling tiling{12, 2};
  const uint64_t tiled = activation_peak(
      backend, [&] { return vae_decode_tiled(backend, model.store, model.config, z, tiling); });
  fmt::print("decode of a 48×48 latent: activation peak {} bytes untiled, {} with tiles of 12\n",
             whole, tiled);
  EXPECT_LT(tiled, whole / 4);
  EXPECT_LE(whole, vae_activation_bytes(model.config, 48 * f, 48 * f) + z.nbytes());
  const uint64_t output_bytes = 3 * 48 * f * 48 * f * sizeof(float);
  EXPECT_LE(tiled, vae_activation_bytes(model.config, 12 * f, 12 * f) + z.nbytes() + output_bytes);
}

TEST(VaeTiling, BudgetPicksTheLargestTileThatFits) {
  Model model;
  const int64_t f = model.config.downscale();
  const uint64_t budget = 8u << 20;
  const VaeTiling tiling = vae_tiling_for_budget(model.config, budget, 4);
  EXPECT_EQ(tiling.overlap, 4);
  EXPECT_LE(vae_activation_bytes(model.config, tiling.tile * f, tiling.tile * f), budget);
  EXPECT_GT(vae_activation_bytes(model.config, (tiling.tile + 1) * f, (tiling.tile + 1) * f),
            budget);
  EXPECT_THROW(vae_tiling_for_budget(model.config, 1024, 4), Error);
}

}  // namespace
}  // namespace ebb
