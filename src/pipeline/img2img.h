#pragma once
// Image to image (-i, --strength) for the SD 1.x/2.x/XL family, as diffusers'
// StableDiffusionImg2ImgPipeline runs it with a CPU torch.Generator: the init image is encoded
// by the VAE and a latent drawn from its distribution (the generator's first draw), scaled by
// the VAE's factor, then noised to the start sigma of the plan's tail (the second draw); the
// sampler runs the last floor(steps · strength) steps of a `steps`-step plan and its own noise
// continues the same stream.
#include "backend/backend.h"
#include "io/png_image.h"
#include "models/text_conditioning.h"
#include "pipeline/diffusion_model_spec.h"
#include "pipeline/txt2img.h"
#include "weights/weight_store.h"

namespace ebb {

// 8-bit RGB → [1, 3, H, W] in [-1, 1]: 2 · (v / 255) − 1 in float, as diffusers'
// VaeImageProcessor normalises.
Tensor from_rgb8(Backend& backend, const Image& image);

// The final latent, as txt2img_latent's. The init image must be RGB of options' width × height
// (the caller resizes or refuses); options.vae_tiling tiles the encode too.
Tensor img2img_latent(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                      const TextConditioner& text, const Txt2ImgOptions& options,
                      const Image& init_image, double strength,
                      const Txt2ImgProgress& progress = {});

}  // namespace ebb
