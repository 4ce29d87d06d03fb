#pragma once
// The tensors (names and shapes, in both namings) of each model component, derived from its
// config the way the original model code builds its modules.
#include "synth/synth_config.h"
#include "synth/tensor_collector.h"

namespace ebb::synth {

// LDM/SGM UNetModel ↔ diffusers UNet2DConditionModel.
void add_unet(TensorCollector& out, const UNetConfig& config);

// CompVis AutoencoderKL ↔ diffusers AutoencoderKL.
void add_vae(TensorCollector& out, const VaeConfig& config);

// transformers CLIPTextModel names, which single-file checkpoints also use for OpenAI CLIP
// (under their prefix).
void add_clip_text(TensorCollector& out, const TextEncoderConfig& config);

// OpenCLIP's text tower ↔ the transformers CLIPTextModel diffusers converts it to. The diffusers
// model keeps the first `diffusers_layers` layers (SD2 drops the last one, which it never uses)
// and, with `diffusers_projection`, text_projection (transposed into a Linear weight).
void add_open_clip_text(TensorCollector& out, const TextEncoderConfig& config, int diffusers_layers,
                        bool diffusers_projection);

}  // namespace ebb::synth
