#pragma once
// Text to image on the tiny SD checkpoints (tests/data/sd) under a memory plan, for tests that
// compare plans: the model's settings from the manifest, one image's latent and pixels.
#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "models/sd_text_references.h"
#include "pipeline/txt2img.h"
#include "support/sd_unet_config.h"

namespace ebb::sd_test {

struct TinyImage {
  std::vector<float> latent;
  std::vector<uint8_t> pixels;
};

inline const ClipTokenizer& tiny_tokenizer() {
  static const ClipTokenizer instance(std::filesystem::path(EBB_TEST_DATA_DIR) /
                                      "../../assets/vocab/clip/bpe_simple_vocab_16e6.txt.gz");
  return instance;
}

inline ModelSource open_tiny(const std::string& arch) {
  return ModelSource::open(
      {.model = kSdDir + sd_arch(arch).at("checkpoint").at("file").get<std::string>()});
}

inline DiffusionModelSpec tiny_model_spec(const std::string& arch, const ModelSource& source) {
  const nlohmann::json& a = sd_arch(arch);
  DiffusionModelSpec spec;
  spec.arch = source.architecture().arch;
  spec.unet = config_from_diffusers(a.at("configs").at("unet"));
  spec.vae = vae_config(source, spec.arch);
  spec.prediction = a.at("prediction") == "v_prediction" ? Prediction::v : Prediction::epsilon;
  spec.vae_scaling_factor = a.at("vae_scaling_factor").get<float>();
  const nlohmann::json& configs = a.at("configs");
  if (configs.contains("clip_l")) spec.text.clip_l_heads = sd_encoder_heads(arch, "clip_l");
  for (const char* name : {"open_clip_h", "open_clip_g"})
    if (configs.contains(name)) spec.text.open_clip_heads = sd_encoder_heads(arch, name);
  return spec;
}

// Two euler_a steps at the manifest's latent size and prompts.
inline TinyImage tiny_txt2img(const std::string& arch, Backend& backend, WeightStore& store,
                              const std::optional<VaeTiling>& tiling = {}) {
  const DiffusionModelSpec spec = tiny_model_spec(arch, store.source());
  const TextConditioner text(store, spec.arch, tiny_tokenizer(), spec.text);
  const nlohmann::json& t = sd_manifest().at("txt2img");
  Txt2ImgOptions o;
  o.prompt = sd_manifest().at("prompts").at(t.at("prompt").get<int>());
  o.negative_prompt = sd_manifest().at("prompts").at(t.at("negative_prompt").get<int>());
  o.cfg_scale = t.at("cfg_scale");
  o.steps = 2;
  o.seed = t.at("seed");
  const std::vector<int64_t> latent_shape = t.at("latent_shape");
  o.height = static_cast<int>(latent_shape.at(2) * spec.vae.downscale());
  o.width = static_cast<int>(latent_shape.at(3) * spec.vae.downscale());
  o.vae_tiling = tiling;
  const Tensor latent = txt2img_latent(backend, store, spec, text, o);
  TinyImage image;
  image.latent = host_values(backend, latent);
  image.pixels = to_rgb8(backend, decode_latent(backend, store, spec, latent, tiling)).pixels;
  return image;
}

}  // namespace ebb::sd_test
