#include "pipeline/activation_estimate.h"

#include <algorithm>

namespace ebb {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;
// Per-op scratch (weights dequantized a block of rows at a time, attention tiles) and the
// arena's rounding of every block up to its size class (at most 12.5%).
constexpr uint64_t kScratch = 64 * kMiB;
constexpr double kRounding = 1.25;

uint64_t with_overheads(double bytes) {
  return static_cast<uint64_t>(bytes * kRounding) + kScratch;
}

}  // namespace

StageActivations estimate_stage_activations(const DiffusionModelSpec& spec, int width, int height,
                                            const VaeTiling& tiling) {
  StageActivations a;
  constexpr double kFloat = 4;
  constexpr double kTokens = 77 * 3;  // up to three 77-token windows
  // Hidden states, q/k/v, attention output, the 4x MLP and the outputs kept per prompt.
  a.text = with_overheads(kFloat * kTokens * static_cast<double>(spec.unet.context_dim) * 24);

  const UNetConfig& u = spec.unet;
  const double batch = 2;
  const double h = static_cast<double>(height) / static_cast<double>(spec.vae.downscale());
  const double w = static_cast<double>(width) / static_cast<double>(spec.vae.downscale());
  double skips = 0, largest_map = 0;
  for (int level = 0; level < u.levels(); ++level) {
    const double scale = static_cast<double>(int64_t{1} << (2 * level));
    const double map = static_cast<double>(u.channels(level)) * h * w / scale;
    skips += (u.num_res_blocks + 1) * map;
    largest_map = std::max(largest_map, map);
  }
  // The skip connections live through the whole pass; around one transformer block at the
  // largest map: norms, q/k/v, the attention output and GEGLU's 8x-wide hidden layer.
  a.diffusion = with_overheads(kFloat * batch * (skips + 16 * largest_map));

  const int64_t px_h = height, px_w = width;
  a.vae = with_overheads(static_cast<double>(vae_activation_bytes(spec.vae, px_h, px_w)));
  const int64_t tile_px = tiling.tile * spec.vae.downscale();
  // A tile's pass plus the blended image and its weights, which span the whole picture.
  a.vae_tiled =
      with_overheads(static_cast<double>(vae_activation_bytes(spec.vae, tile_px, tile_px)) +
                     kFloat * 2 * 4 * static_cast<double>(px_h * px_w));
  a.vae_tiled = std::min(a.vae_tiled, a.vae);
  return a;
}

}  // namespace ebb
