#pragma once
// The tiny test UNets' configs: diffusers' UNet2DConditionModel config (as the SD manifest
// records it) in LDM terms.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "models/unet.h"

namespace ebb::sd_test {

// diffusers' UNet2DConditionModel config in LDM terms. `attention_head_dim` is a head count
// in diffusers (a historical misnomer), per level or one for all.
inline UNetConfig config_from_diffusers(const nlohmann::json& d) {
  UNetConfig c;
  c.in_channels = d.at("in_channels");
  c.out_channels = d.at("out_channels");
  const std::vector<int64_t> widths = d.at("block_out_channels");
  c.model_channels = widths.front();
  for (const int64_t w : widths) c.channel_mult.push_back(w / c.model_channels);
  c.num_res_blocks = d.at("layers_per_block");
  const std::vector<int> depth = d.at("transformer_layers_per_block");
  for (size_t i = 0; i < widths.size(); ++i) {
    const bool attention = d.at("down_block_types")[i] == "CrossAttnDownBlock2D";
    c.transformer_depth.push_back(attention ? depth[i] : 0);
    const auto& heads = d.at("attention_head_dim");
    c.heads.push_back(heads.is_array() ? heads[i].get<int64_t>() : heads.get<int64_t>());
  }
  c.middle_transformer_depth = depth.back();
  c.context_dim = d.at("cross_attention_dim");
  if (d.contains("addition_embed_type")) {
    c.adm_in_channels = d.at("projection_class_embeddings_input_dim");
    c.time_id_dim = d.at("addition_time_embed_dim");
  }
  return c;
}

}  // namespace ebb::sd_test
