#pragma once
// Upper estimates of the device bytes each stage's computation holds besides its weights
// (activations, scratch, the arena's size-class rounding), for the planner to size plans with
// before anything runs. Deliberately generous: a plan sized with them must not run out.
#include <cstdint>

#include "pipeline/diffusion_model_spec.h"
#include "pipeline/vae_tiling.h"

namespace ebb {

struct StageActivations {
  uint64_t text = 0;
  uint64_t diffusion = 0;
  uint64_t vae = 0;        // decoding the whole latent at once
  uint64_t vae_tiled = 0;  // with `tiling`
};

// For one image of width × height pixels, guided (batch-2 UNet calls).
StageActivations estimate_stage_activations(const DiffusionModelSpec& spec, int width, int height,
                                            const VaeTiling& tiling);

}  // namespace ebb
