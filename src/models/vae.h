#pragma once
// The CompVis AutoencoderKL of SD 1.x, 2.x and XL (original single-file names, component
// "vae"): an encoder from images in [-1, 1] to latent moments, and a decoder from latents back
// to images. Latents here are in the VAE's own scale; multiplying by vae_scaling_factor is the
// pipeline's business. Weights are leased one block at a time.
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "io/architecture.h"
#include "io/model_source.h"
#include "weights/weight_store.h"

namespace ebb {

struct VaeConfig {
  int64_t image_channels = 3;
  int64_t latent_channels = 4;
  std::vector<int64_t> channels;  // per level, finest first (block_out_channels)
  int encoder_blocks = 0;         // residual blocks per encoder level; 0: the files have no encoder
  int decoder_blocks = 0;         // residual blocks per decoder level

  int levels() const { return static_cast<int>(channels.size()); }
  // Image pixels per latent pixel along each axis: 8 for the real VAE.
  int64_t downscale() const { return int64_t{1} << (levels() - 1); }
};

// The architecture's latent scale (0.18215 for SD 1.x/2.x, 0.13025 for SDXL).
float vae_scaling_factor(Architecture arch);

// The configuration read from the shapes of the "vae" component's tensors, checked against
// what `arch` expects; fails naming the tensor that is missing or has the wrong shape.
VaeConfig vae_config(const ModelSource& source, Architecture arch);

// z [B, latent_channels, h, w] → image [B, image_channels, h·downscale, w·downscale],
// unclamped (about [-1, 1]).
Tensor vae_decode(Backend& backend, WeightStore& store, const VaeConfig& config, const Tensor& z);

// image [B, image_channels, H, W] (H, W multiples of downscale, values in [-1, 1]) →
// moments [B, 2·latent_channels, H/downscale, W/downscale]: the mean, then the log variance
// (unclamped).
Tensor vae_encode_moments(Backend& backend, WeightStore& store, const VaeConfig& config,
                          const Tensor& image);

// The latent distribution's mean: the first half of the moments' channels.
Tensor vae_latent_mean(Backend& backend, const Tensor& moments);
// A draw from the latent distribution: mean + exp(logvar / 2) · noise, with the log variance
// clamped to [-30, 20] as diffusers does; noise has the mean's shape.
Tensor vae_latent_sample(Backend& backend, const Tensor& moments, const Tensor& noise);

}  // namespace ebb
