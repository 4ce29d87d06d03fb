#include "pipeline/diffusion_model_spec.h"

#include <fmt/format.h>

#include <string>

#include "core/error.h"
#include "models/open_clip.h"

namespace ebb {
namespace {

constexpr int64_t kHeadWidth = 64;  // SD 2.x/XL UNets and all released text encoders

const IndexedTensor* find_unet(const ModelSource& source, const std::string& name) {
  return source.find("diffusion_model", name);
}

int64_t unet_dim(const ModelSource& source, const std::string& name, size_t axis) {
  const IndexedTensor* t = find_unet(source, name);
  if (!t || t->info.shape.size() <= axis)
    fail("diffusion_model: tensor {} is missing or has too few dimensions", name);
  return t->info.shape[axis];
}

int transformer_depth(const ModelSource& source, const std::string& block) {
  int depth = 0;
  while (find_unet(source, fmt::format("{}transformer_blocks.{}.attn2.to_k.weight", block, depth)))
    ++depth;
  return depth;
}

// The released rule (SD 1.x: 8 heads; SD 2.x/XL: 64-channel heads), with one head for levels
// narrower than a head, as in test-sized models.
int64_t unet_heads(Architecture arch, int64_t channels) {
  if (arch == Architecture::SD1) return channels % 8 == 0 ? 8 : 1;
  return channels >= kHeadWidth ? channels / kHeadWidth : 1;
}

// The UNet's structure read from the input blocks: a level is res blocks (with or without a
// transformer) then a downsampling conv, except the last level.
UNetConfig unet_config(const ModelSource& source, Architecture arch) {
  UNetConfig c = UNetConfig::for_architecture(arch);
  c.model_channels = unet_dim(source, "input_blocks.0.0.weight", 0);
  c.in_channels = unet_dim(source, "input_blocks.0.0.weight", 1);
  c.out_channels = unet_dim(source, "out.2.weight", 0);
  c.channel_mult.clear();
  c.transformer_depth.clear();
  c.heads.clear();
  int block = 1;
  c.num_res_blocks = 0;
  while (find_unet(source,
                   fmt::format("input_blocks.{}.0.in_layers.2.weight", block + c.num_res_blocks)))
    ++c.num_res_blocks;
  if (c.num_res_blocks == 0)
    fail("diffusion_model: tensor input_blocks.1.0.in_layers.2.weight is missing");
  for (;;) {
    const int64_t width =
        unet_dim(source, fmt::format("input_blocks.{}.0.in_layers.2.weight", block), 0);
    if (width % c.model_channels != 0)
      fail("diffusion_model: input_blocks.{} has {} channels, not a multiple of {}", block, width,
           c.model_channels);
    c.channel_mult.push_back(width / c.model_channels);
    c.transformer_depth.push_back(
        transformer_depth(source, fmt::format("input_blocks.{}.1.", block)));
    c.heads.push_back(unet_heads(arch, width));
    block += c.num_res_blocks;
    if (!find_unet(source, fmt::format("input_blocks.{}.0.op.weight", block))) break;
    ++block;
  }
  c.middle_transformer_depth = transformer_depth(source, "middle_block.1.");
  for (int level = 0; level < c.levels(); ++level)
    if (c.transformer_depth[level] > 0) {
      c.context_dim =
          unet_dim(source,
                   fmt::format("input_blocks.{}.1.transformer_blocks.0.attn2.to_k.weight",
                               1 + level * (c.num_res_blocks + 1)),
                   1);
      break;
    }
  if (arch == Architecture::SDXL) {
    c.adm_in_channels = unet_dim(source, "label_emb.0.0.weight", 1);
    const int64_t pooled = open_clip_projection_width(source, "clip_g");
    if (c.adm_in_channels <= pooled || (c.adm_in_channels - pooled) % 6 != 0)
      fail(
          "diffusion_model: label_emb.0.0.weight takes {} channels, which is not the pooled "
          "width {} plus six size embeddings",
          c.adm_in_channels, pooled);
    c.time_id_dim = (c.adm_in_channels - pooled) / 6;
  }
  return c;
}

// 0 (the encoder's own 64-channel rule) unless the encoder is narrower than one head.
int64_t text_heads(const ModelSource& source, const std::string& component,
                   const std::string& embedding) {
  const IndexedTensor* t = source.find(component, embedding);
  if (!t || t->info.shape.size() != 2) return 0;
  return t->info.shape[1] % kHeadWidth == 0 ? 0 : 1;
}

}  // namespace

DiffusionModelSpec diffusion_model_spec(const ModelSource& source) {
  DiffusionModelSpec spec;
  spec.arch = source.architecture().arch;
  spec.unet = unet_config(source, spec.arch);
  spec.vae = vae_config(source, spec.arch);
  spec.prediction = spec.arch == Architecture::SD2 ? Prediction::v : Prediction::epsilon;
  spec.vae_scaling_factor = vae_scaling_factor(spec.arch);
  spec.text.clip_l_heads =
      text_heads(source, "clip_l", "text_model.embeddings.token_embedding.weight");
  const std::string open_clip = spec.arch == Architecture::SDXL ? "clip_g" : "clip_h";
  spec.text.open_clip_heads = text_heads(
      source, open_clip, open_clip_text_layout(source, open_clip).token_embedding.full_name());
  return spec;
}

}  // namespace ebb
