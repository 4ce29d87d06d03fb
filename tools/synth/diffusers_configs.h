#pragma once
// The config.json each diffusers/transformers model folder carries, from the same configs the
// tensors come from.
#include <nlohmann/json.hpp>

#include "synth/synth_config.h"

namespace ebb::synth {

// The diffusers release whose config format these follow.
inline constexpr const char* kDiffusersVersion = "0.21.0";

nlohmann::ordered_json unet_config_json(const UNetConfig& config);
nlohmann::ordered_json vae_config_json(const VaeConfig& config);
// CLIPTextModel, or CLIPTextModelWithProjection when `with_projection`.
nlohmann::ordered_json text_encoder_config_json(const TextEncoderConfig& config,
                                                bool with_projection);

}  // namespace ebb::synth
