#include "pipeline/vae_tiling.h"

#include <algorithm>
#include <optional>

#include "core/checked_math.h"
#include "core/error.h"

namespace ebb {
namespace {

// Live full-size tensors inside a residual block (input, norm, activation, convolution) plus
// the caller's; the mid attention block holds about twice as many at the coarsest level.
constexpr uint64_t kLiveTensorsPerLevel = 5;
constexpr uint64_t kLiveTensorsInAttention = 10;

uint64_t product(uint64_t a, uint64_t b) {
  const std::optional<uint64_t> r = checked_mul(a, b);
  if (!r) fail("VAE tiling: sizes {} × {} overflow", a, b);
  return *r;
}

// One axis of the tiling: where each tile's output starts and its blend weight per output
// pixel, already divided by the sum over tiles so that the weights add up to one.
struct AxisTiles {
  std::vector<int64_t> starts;  // latent pixels
  int64_t length = 0;           // latent pixels per tile
  std::vector<std::vector<float>> weights;
};

AxisTiles axis_tiles(int64_t length, const VaeTiling& tiling, int64_t out_scale) {
  AxisTiles axis{
      vae_tile_starts(length, tiling.tile, tiling.overlap), std::min(tiling.tile, length), {}};
  const int64_t pixels = axis.length * out_scale;
  const float ramp = float(tiling.overlap * out_scale);
  std::vector<float> total(length * out_scale, 0.0f);
  for (size_t t = 0; t < axis.starts.size(); ++t) {
    std::vector<float> w(pixels, 1.0f);
    // Weights fall linearly towards an edge that a neighbour covers, never towards the image
    // border, so a lone tile weighs exactly one everywhere.
    const bool rise = ramp > 0 && t > 0, fall = ramp > 0 && t + 1 < axis.starts.size();
    for (int64_t p = 0; p < pixels; ++p) {
      if (rise) w[p] = std::min(w[p], (float(p) + 0.5f) / ramp);
      if (fall) w[p] = std::min(w[p], (float(pixels - p) - 0.5f) / ramp);
      total[axis.starts[t] * out_scale + p] += w[p];
    }
    axis.weights.push_back(std::move(w));
  }
  for (size_t t = 0; t < axis.starts.size(); ++t) {
    for (int64_t p = 0; p < pixels; ++p)
      axis.weights[t][p] /= total[axis.starts[t] * out_scale + p];
  }
  return axis;
}

}  // namespace

Tensor vae_tiled_pass(Backend& backend, const Tensor& input, int64_t in_scale, int64_t out_scale,
                      const VaeTiling& tiling, const TilePass& pass) {
  if (input.rank() != 4 || input.dim(2) % in_scale != 0 || input.dim(3) % in_scale != 0) {
    fail("VAE tiling: input {} must be [B, C, H, W] with H and W multiples of {}", input.describe(),
         in_scale);
  }
  const AxisTiles rows = axis_tiles(input.dim(2) / in_scale, tiling, out_scale);
  const AxisTiles cols = axis_tiles(input.dim(3) / in_scale, tiling, out_scale);
  const int64_t out_h = input.dim(2) / in_scale * out_scale;
  const int64_t out_w = input.dim(3) / in_scale * out_scale;
  Shape out_shape;
  std::vector<float> blended, tile_values;
  for (size_t r = 0; r < rows.starts.size(); ++r) {
    for (size_t c = 0; c < cols.starts.size(); ++c) {
      const Tensor piece = input.narrow(2, rows.starts[r] * in_scale, rows.length * in_scale)
                               .narrow(3, cols.starts[c] * in_scale, cols.length * in_scale);
      const Tensor out = pass(backend.contiguous(piece));
      const int64_t th = rows.length * out_scale, tw = cols.length * out_scale;
      if (out.rank() != 4 || out.dim(2) != th || out.dim(3) != tw) {
        fail("VAE tiling: a tile's output {} is not {}×{}", out.describe(), th, tw);
      }
      if (blended.empty()) {
        out_shape = {out.dim(0), out.dim(1), out_h, out_w};
        blended.assign(product(out.dim(0) * out.dim(1), product(out_h, out_w)), 0.0f);
      }
      tile_values.resize(out.numel());
      backend.read_floats(out, tile_values);
      const int64_t planes = out.dim(0) * out.dim(1);
      const int64_t y0 = rows.starts[r] * out_scale, x0 = cols.starts[c] * out_scale;
      for (int64_t plane = 0; plane < planes; ++plane) {
        for (int64_t y = 0; y < th; ++y) {
          const float wy = rows.weights[r][y];
          const float* src = tile_values.data() + (plane * th + y) * tw;
          float* dst = blended.data() + (plane * out_h + y0 + y) * out_w + x0;
          for (int64_t x = 0; x < tw; ++x) dst[x] += wy * cols.weights[c][x] * src[x];
        }
      }
    }
  }
  return backend.from_floats(out_shape, blended, "vae tiling");
}

std::vector<int64_t> vae_tile_starts(int64_t length, int64_t tile, int64_t overlap) {
  if (length < 1 || tile < 1 || overlap < 0 || overlap >= tile) {
    fail("VAE tiling: tiles of {} with overlap {} over {} pixels (need 0 <= overlap < tile)", tile,
         overlap, length);
  }
  if (tile >= length) return {0};
  const int64_t step = tile - overlap;
  const int64_t count = (length - overlap + step - 1) / step;
  std::vector<int64_t> starts(count);
  for (int64_t i = 0; i < count; ++i) starts[i] = i * (length - tile) / (count - 1);
  return starts;
}

uint64_t vae_activation_bytes(const VaeConfig& config, int64_t height, int64_t width) {
  uint64_t worst = 0;
  uint64_t pixels = product(height, width);
  for (int level = 0; level < config.levels(); ++level) {
    // The decoder's upsampling convolution of the coarser level runs at this resolution too.
    const int64_t coarser = level + 1 < config.levels() ? config.channels[level + 1] : 0;
    const uint64_t channels = std::max(config.channels[level], coarser);
    worst = std::max(worst, product(kLiveTensorsPerLevel, product(channels, pixels)));
    if (level + 1 == config.levels()) {
      worst = std::max(worst,
                       product(kLiveTensorsInAttention, product(config.channels[level], pixels)));
    }
    pixels = (pixels + 3) / 4;
  }
  return product(worst, sizeof(float));
}

VaeTiling vae_tiling_for_budget(const VaeConfig& config, uint64_t budget_bytes, int64_t overlap) {
  const int64_t f = config.downscale();
  VaeTiling tiling{2 * overlap + 1, overlap};
  if (vae_activation_bytes(config, tiling.tile * f, tiling.tile * f) > budget_bytes) {
    fail(
        "VAE tiling: a budget of {} bytes does not fit even a tile of {} latent pixels "
        "(overlap {}), which needs about {} bytes",
        budget_bytes, tiling.tile, overlap,
        vae_activation_bytes(config, tiling.tile * f, tiling.tile * f));
  }
  while (vae_activation_bytes(config, (tiling.tile + 1) * f, (tiling.tile + 1) * f) <=
             budget_bytes &&
         tiling.tile < (int64_t{1} << 20)) {
    ++tiling.tile;
  }
  return tiling;
}

Tensor vae_decode_tiled(Backend& backend, WeightStore& store, const VaeConfig& config,
                        const Tensor& z, const VaeTiling& tiling) {
  return vae_tiled_pass(backend, z, 1, config.downscale(), tiling, [&](const Tensor& tile) {
    return vae_decode(backend, store, config, tile);
  });
}

Tensor vae_encode_moments_tiled(Backend& backend, WeightStore& store, const VaeConfig& config,
                                const Tensor& image, const VaeTiling& tiling) {
  return vae_tiled_pass(backend, image, config.downscale(), 1, tiling, [&](const Tensor& tile) {
    return vae_encode_moments(backend, store, config, tile);
  });
}

}  // namespace ebb
