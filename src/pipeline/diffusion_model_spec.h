#pragma once
// What the text-to-image pipeline needs to know about a checkpoint beyond its weights: the
// UNet's structure, the VAE's, the prediction type and the latent scale. Widths and depths come
// from the tensor shapes, so checkpoints pruned or shrunk from the released ones work too;
// what the file cannot tell (attention head counts, prediction type) follows the released
// models of the architecture.
#include "io/model_source.h"
#include "models/text_conditioning.h"
#include "models/unet.h"
#include "models/vae.h"
#include "pipeline/samplers/denoiser.h"

namespace ebb {

struct DiffusionModelSpec {
  Architecture arch = Architecture::Unknown;
  UNetConfig unet;
  VaeConfig vae;
  Prediction prediction = Prediction::epsilon;  // SD 2.x: v, as the 768-v model
  float vae_scaling_factor = 0;
  TextConditioningOptions text;  // head counts of text encoders narrower than 64 channels
};

// Fails for architectures other than SD 1.x/2.x/XL, naming the tensor that is missing.
DiffusionModelSpec diffusion_model_spec(const ModelSource& source);

}  // namespace ebb
