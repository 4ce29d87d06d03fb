#pragma once
// What text to image and image to image share: the size check, and a sampler walking the UNet
// under classifier-free guidance from a given start latent.
#include <vector>

#include "backend/backend.h"
#include "models/text_conditioning.h"
#include "pipeline/diffusion_model_spec.h"
#include "pipeline/samplers/sampler.h"
#include "pipeline/torch_rng.h"
#include "pipeline/txt2img.h"
#include "weights/weight_store.h"

namespace ebb {

// Fails unless width and height are positive multiples of the VAE's times the UNet's
// downsampling.
void check_image_size(const DiffusionModelSpec& spec, int width, int height);

// The latent shape [1, UNet channels, height / downscale, width / downscale] of options' size.
Shape image_latent_shape(const DiffusionModelSpec& spec, const Txt2ImgOptions& options);

// Runs the plan's sampler from x (latent_shape values, k-diffusion's scale, at plan.sigmas[0])
// with options' prompts, guidance scale and size conditioning; the samplers' noise continues
// the generator's stream. Returns the final latent.
Tensor sample_guided(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                     const TextConditioner& text, const Txt2ImgOptions& options,
                     const SamplingPlan& plan, std::vector<float> x, TorchCpuGenerator& generator,
                     const Txt2ImgProgress& progress);

}  // namespace ebb
