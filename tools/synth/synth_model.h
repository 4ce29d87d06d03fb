#pragma once
// One synthetic pipeline: its components, each with its tensors in single-file and diffusers
// naming, and what a diffusers folder needs around them.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "synth/tensor_collector.h"

namespace ebb::synth {

enum class Arch { Sd1, Sd2, Sdxl };
enum class ModelSize { Full, Tiny };
enum class ComponentKind { Unet, Vae, TextEncoder };

std::optional<Arch> parse_arch(std::string_view name);
std::string_view arch_name(Arch arch);

struct SynthComponent {
  std::string name;  // as --components names it: unet, vae, clip (SDXL: clip_l, clip_g)
  ComponentKind kind;
  std::string prefix;                          // of its tensors in a single-file checkpoint
  std::vector<SynthTensor> tensors;            // single-file names, without the prefix
  std::vector<SynthTensor> diffusers_tensors;  // diffusers/transformers names
  std::string diffusers_folder;                // unet, vae, text_encoder, text_encoder_2
  std::string diffusers_library;               // diffusers | transformers
  std::string diffusers_class;                 // UNet2DConditionModel, CLIPTextModel, …
  std::string weights_name;                    // diffusion_pytorch_model | model
  nlohmann::ordered_json diffusers_config;
  std::string tokenizer_folder;  // text encoders: the tokenizer the pipeline pairs them with
};

struct SynthModel {
  std::string pipeline_class;  // model_index.json's _class_name
  std::vector<SynthComponent> components;
  nlohmann::ordered_json scheduler_config;
};

SynthModel build_model(Arch arch, ModelSize size);

}  // namespace ebb::synth
