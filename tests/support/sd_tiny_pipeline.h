#pragma once
// What the pipeline tests need to run the tiny SD checkpoints of tests/data/sd: the shipped
// tokenizer, and the model spec and text options from the manifest (the tiny models' settings
// are not the released models' defaults).
#include <filesystem>
#include <string>

#include "models/sd_text_references.h"
#include "models/text_conditioning.h"
#include "models/vae.h"
#include "pipeline/clip_tokenizer.h"
#include "pipeline/diffusion_model_spec.h"
#include "support/sd_unet_config.h"

namespace ebb::sd_test {

inline const ClipTokenizer& tokenizer() {
  static const ClipTokenizer instance(std::filesystem::path(EBB_TEST_DATA_DIR) /
                                      "../../assets/vocab/clip/bpe_simple_vocab_16e6.txt.gz");
  return instance;
}

inline DiffusionModelSpec tiny_spec(const std::string& arch, const ModelSource& source) {
  const nlohmann::json& a = sd_arch(arch);
  DiffusionModelSpec spec;
  spec.arch = source.architecture().arch;
  spec.unet = config_from_diffusers(a.at("configs").at("unet"));
  spec.vae = vae_config(source, spec.arch);
  spec.prediction = a.at("prediction") == "v_prediction" ? Prediction::v : Prediction::epsilon;
  spec.vae_scaling_factor = a.at("vae_scaling_factor").get<float>();
  return spec;
}

inline TextConditioningOptions tiny_text_options(const std::string& arch) {
  TextConditioningOptions options;
  const nlohmann::json& configs = sd_arch(arch).at("configs");
  if (configs.contains("clip_l")) options.clip_l_heads = sd_encoder_heads(arch, "clip_l");
  for (const char* name : {"open_clip_h", "open_clip_g"})
    if (configs.contains(name)) options.open_clip_heads = sd_encoder_heads(arch, name);
  return options;
}

}  // namespace ebb::sd_test
