#include "synth/synth_model.h"

#include "synth/diffusers_configs.h"
#include "synth/model_tensors.h"

namespace ebb::synth {
namespace {

using Json = nlohmann::ordered_json;

SynthComponent component_from(TensorCollector& tensors, std::string name, ComponentKind kind) {
  SynthComponent component;
  component.name = std::move(name);
  component.kind = kind;
  component.prefix = tensors.prefix();
  component.tensors = std::move(tensors.original());
  component.diffusers_tensors = std::move(tensors.diffusers());
  return component;
}

SynthComponent unet(const UNetConfig& config) {
  TensorCollector tensors("model.diffusion_model.");
  add_unet(tensors, config);
  SynthComponent c = component_from(tensors, "unet", ComponentKind::Unet);
  c.diffusers_folder = "unet";
  c.diffusers_library = "diffusers";
  c.diffusers_class = "UNet2DConditionModel";
  c.weights_name = "diffusion_pytorch_model";
  c.diffusers_config = unet_config_json(config);
  return c;
}

SynthComponent vae(const VaeConfig& config) {
  TensorCollector tensors("first_stage_model.");
  add_vae(tensors, config);
  SynthComponent c = component_from(tensors, "vae", ComponentKind::Vae);
  c.diffusers_folder = "vae";
  c.diffusers_library = "diffusers";
  c.diffusers_class = "AutoencoderKL";
  c.weights_name = "diffusion_pytorch_model";
  c.diffusers_config = vae_config_json(config);
  return c;
}

SynthComponent text_encoder(TensorCollector& tensors, std::string name, std::string folder,
                            std::string tokenizer, Json config) {
  SynthComponent c = component_from(tensors, std::move(name), ComponentKind::TextEncoder);
  c.diffusers_folder = std::move(folder);
  c.diffusers_library = "transformers";
  c.diffusers_class = config["architectures"][0].get<std::string>();
  c.weights_name = "model";
  c.diffusers_config = std::move(config);
  c.tokenizer_folder = std::move(tokenizer);
  return c;
}

SynthComponent clip_l(const TextEncoderConfig& config, std::string name, std::string prefix) {
  TensorCollector tensors(std::move(prefix));
  add_clip_text(tensors, config);
  return text_encoder(tensors, std::move(name), "text_encoder", "tokenizer",
                      text_encoder_config_json(config, false));
}

Json scheduler(const char* class_name, const char* prediction_type) {
  Json config = {{"_class_name", class_name},
                 {"beta_end", 0.012},
                 {"beta_schedule", "scaled_linear"},
                 {"beta_start", 0.00085},
                 {"num_train_timesteps", 1000},
                 {"prediction_type", prediction_type},
                 {"steps_offset", 1}};
  return config;
}

SynthModel sd1(const Sd1Config& config) {
  SynthModel model{"StableDiffusionPipeline", {}, scheduler("PNDMScheduler", "epsilon")};
  model.scheduler_config["set_alpha_to_one"] = false;
  model.scheduler_config["skip_prk_steps"] = true;
  model.components.push_back(unet(config.unet));
  model.components.push_back(vae(config.vae));
  model.components.push_back(clip_l(config.clip_l, "clip", "cond_stage_model.transformer."));
  return model;
}

// The released SD2 checkpoint diffusers ships drops OpenCLIP's last layer (SD2 conditions on
// the penultimate one) and its text projection.
SynthModel sd2(const Sd2Config& config) {
  SynthModel model{"StableDiffusionPipeline", {}, scheduler("DDIMScheduler", "v_prediction")};
  model.scheduler_config["clip_sample"] = false;
  model.scheduler_config["set_alpha_to_one"] = false;
  model.components.push_back(unet(config.unet));
  model.components.push_back(vae(config.vae));
  TensorCollector tensors("cond_stage_model.model.");
  TextEncoderConfig diffusers = config.open_clip_h;
  diffusers.num_hidden_layers -= 1;
  add_open_clip_text(tensors, config.open_clip_h, diffusers.num_hidden_layers, false);
  model.components.push_back(text_encoder(tensors, "clip", "text_encoder", "tokenizer",
                                          text_encoder_config_json(diffusers, false)));
  return model;
}

SynthModel sdxl(const SdxlConfig& config) {
  SynthModel model{"StableDiffusionXLPipeline", {}, scheduler("EulerDiscreteScheduler", "epsilon")};
  model.scheduler_config["interpolation_type"] = "linear";
  model.scheduler_config["timestep_spacing"] = "leading";
  model.components.push_back(unet(config.unet));
  model.components.push_back(vae(config.vae));
  model.components.push_back(
      clip_l(config.clip_l, "clip_l", "conditioner.embedders.0.transformer."));
  TensorCollector tensors("conditioner.embedders.1.model.");
  add_open_clip_text(tensors, config.open_clip_g, config.open_clip_g.num_hidden_layers, true);
  model.components.push_back(text_encoder(tensors, "clip_g", "text_encoder_2", "tokenizer_2",
                                          text_encoder_config_json(config.open_clip_g, true)));
  return model;
}

}  // namespace

std::optional<Arch> parse_arch(std::string_view name) {
  for (Arch arch : {Arch::Sd1, Arch::Sd2, Arch::Sdxl})
    if (arch_name(arch) == name) return arch;
  return std::nullopt;
}

std::string_view arch_name(Arch arch) {
  switch (arch) {
    case Arch::Sd1:
      return "sd1";
    case Arch::Sd2:
      return "sd2";
    case Arch::Sdxl:
      return "sdxl";
  }
  return "";
}

SynthModel build_model(Arch arch, ModelSize size) {
  const bool full = size == ModelSize::Full;
  switch (arch) {
    case Arch::Sd1:
      return sd1(full ? Sd1Config::full() : Sd1Config::tiny());
    case Arch::Sd2:
      return sd2(full ? Sd2Config::full() : Sd2Config::tiny());
    case Arch::Sdxl:
      return sdxl(full ? SdxlConfig::full() : SdxlConfig::tiny());
  }
  return {};
}

}  // namespace ebb::synth
