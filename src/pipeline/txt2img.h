#pragma once
// Text to image for the SD 1.x/2.x/XL family: prompt and negative prompt through the text
// encoders, a sampler walking the UNet with classifier-free guidance from seeded noise, and the
// VAE decoding the final latent. Random numbers follow torch's CPU generator so that a seed gives
// what diffusers/k-diffusion give for it: the first draw is the initial noise, the ancestral
// samplers continue the same stream. Each stage (text encoders, diffusion, VAE) is bracketed by
// the weight store's begin_stage/end_stage, so its memory plan acts at stage boundaries.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/architecture.h"
#include "io/png_image.h"
#include "models/text_conditioning.h"
#include "models/unet.h"
#include "models/vae.h"
#include "pipeline/diffusion_model_spec.h"
#include "pipeline/samplers/denoiser.h"
#include "pipeline/samplers/sampler.h"
#include "pipeline/vae_tiling.h"
#include "weights/weight_store.h"

namespace ebb {

struct Txt2ImgOptions {
  std::string prompt;
  std::string negative_prompt;
  int width = 512;  // pixels; multiples of the VAE downscale times 2^(UNet levels - 1)
  int height = 512;
  int steps = 20;
  float cfg_scale = 7.0f;
  Sampler sampler = Sampler::euler_a;
  Schedule schedule = Schedule::discrete;
  uint64_t seed = 42;
  std::optional<VaeTiling> vae_tiling;  // none: decode the whole latent at once
  // Where the text encoders run (--clip-on-cpu); none: on the UNet's backend.
  Backend* text_backend = nullptr;
};

// Called after each sampler step with the number of steps done.
using Txt2ImgProgress = std::function<void(int step, int steps)>;

// The final latent [1, latent channels, height / downscale, width / downscale] in the sampler's
// scale (not yet divided by the VAE scaling factor). Fails on sizes the model cannot take.
Tensor txt2img_latent(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                      const TextConditioner& text, const Txt2ImgOptions& options,
                      const Txt2ImgProgress& progress = {});

// vae.decode(latent / scaling factor): the image [1, 3, H, W], unclamped (about [-1, 1]).
// Decoded in the activation dtype; when that overflows (NaN or infinity), decoded again in F32
// and returned in F32 (pipeline/overflow_guard.h).
Tensor decode_latent(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                     const Tensor& latent, const std::optional<VaeTiling>& tiling);

// [1, 3, H, W] in [-1, 1] → 8-bit RGB: round(clamp((x + 1) / 2, 0, 1) · 255).
Image to_rgb8(Backend& backend, const Tensor& image);

}  // namespace ebb
