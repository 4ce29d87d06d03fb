#pragma once
// What the pipeline tests need to run the tiny SD checkpoints of tests/data/sd: the shipped
// tokenizer, the model spec and text settings the manifest records (the tiny models' settings
// are not the released models' defaults), and a recorded run's options.
#include <filesystem>
#include <string>
#include <vector>

#include "models/sd_text_references.h"
#include "models/text_conditioning.h"
#include "models/vae.h"
#include "pipeline/clip_tokenizer.h"
#include "pipeline/diffusion_model_spec.h"
#include "pipeline/txt2img.h"
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

inline Txt2ImgOptions recorded_options(const nlohmann::json& run, const DiffusionModelSpec& spec) {
  const nlohmann::json& t = sd_manifest().at("txt2img");
  Txt2ImgOptions o;
  o.prompt = sd_manifest().at("prompts").at(t.at("prompt").get<int>());
  o.negative_prompt = sd_manifest().at("prompts").at(t.at("negative_prompt").get<int>());
  o.cfg_scale = t.at("cfg_scale");
  o.steps = t.at("steps");
  o.seed = t.at("seed");
  const std::vector<int64_t> latent = t.at("latent_shape");
  o.height = static_cast<int>(latent.at(2) * spec.vae.downscale());
  o.width = static_cast<int>(latent.at(3) * spec.vae.downscale());
  o.sampler = parse_sampler(run.at("sampler").get<std::string>());
  o.schedule = parse_schedule(run.at("schedule").get<std::string>());
  return o;
}

inline ModelSource open_tiny(const std::string& arch) {
  return ModelSource::open(
      {.model = kSdDir + sd_arch(arch).at("checkpoint").at("file").get<std::string>()});
}

// The spec with the text encoders' settings too.
inline DiffusionModelSpec tiny_model_spec(const std::string& arch, const ModelSource& source) {
  DiffusionModelSpec spec = tiny_spec(arch, source);
  spec.text = tiny_text_options(arch);
  return spec;
}

// One image's latent and pixels, for tests that compare memory plans.
struct TinyImage {
  std::vector<float> latent;
  std::vector<uint8_t> pixels;
};

// Two euler_a steps at the manifest's latent size and prompts.
inline TinyImage tiny_txt2img(const std::string& arch, Backend& backend, WeightStore& store,
                              const std::optional<VaeTiling>& tiling = {}) {
  const DiffusionModelSpec spec = tiny_model_spec(arch, store.source());
  const TextConditioner text(store, spec.arch, tokenizer(), spec.text);
  Txt2ImgOptions o = recorded_options({{"sampler", "euler_a"}, {"schedule", "discrete"}}, spec);
  o.steps = 2;
  o.vae_tiling = tiling;
  const Tensor latent = txt2img_latent(backend, store, spec, text, o);
  TinyImage image;
  image.latent = backend.to_floats(latent);
  image.pixels = to_rgb8(backend, decode_latent(backend, store, spec, latent, tiling)).pixels;
  return image;
}

}  // namespace ebb::sd_test
