#include "synth/diffusers_configs.h"

namespace ebb::synth {
namespace {

using Json = nlohmann::ordered_json;

}  // namespace

Json unet_config_json(const UNetConfig& c) {
  Json block_out = Json::array();
  Json heads = Json::array();
  Json down = Json::array();
  Json up = Json::array();
  for (int level = 0; level < c.levels(); ++level) {
    block_out.push_back(c.channels(level));
    heads.push_back(c.heads(level));
    down.push_back(c.attention[level] ? "CrossAttnDownBlock2D" : "DownBlock2D");
    const int up_level = c.levels() - 1 - level;
    up.push_back(c.attention[up_level] ? "CrossAttnUpBlock2D" : "UpBlock2D");
  }
  Json config = {
      {"_class_name", "UNet2DConditionModel"},
      {"_diffusers_version", kDiffusersVersion},
      {"act_fn", "silu"},
      // diffusers' historical name for the number of heads.
      {"attention_head_dim", c.num_heads > 0 ? Json(c.num_heads) : heads},
      {"block_out_channels", block_out},
      {"center_input_sample", false},
      {"cross_attention_dim", c.context_dim},
      {"down_block_types", down},
      {"downsample_padding", 1},
      {"flip_sin_to_cos", true},
      {"freq_shift", 0},
      {"in_channels", c.in_channels},
      {"layers_per_block", c.num_res_blocks},
      {"mid_block_scale_factor", 1},
      {"norm_eps", 1e-5},
      {"norm_num_groups", 32},
      {"out_channels", c.out_channels},
      {"sample_size", c.sample_size},
      {"transformer_layers_per_block", c.transformer_depth},
      {"up_block_types", up},
      {"use_linear_projection", c.use_linear_projection},
  };
  if (c.adm_in_channels > 0) {
    config["addition_embed_type"] = "text_time";
    config["addition_time_embed_dim"] = c.addition_time_embed_dim;
    config["projection_class_embeddings_input_dim"] = c.adm_in_channels;
  }
  return config;
}

Json vae_config_json(const VaeConfig& c) {
  Json block_out = Json::array();
  for (int mult : c.ch_mult) block_out.push_back(c.ch * mult);
  return {
      {"_class_name", "AutoencoderKL"},
      {"_diffusers_version", kDiffusersVersion},
      {"act_fn", "silu"},
      {"block_out_channels", block_out},
      {"down_block_types", Json(std::vector<std::string>(c.levels(), "DownEncoderBlock2D"))},
      {"in_channels", c.in_channels},
      {"latent_channels", c.z_channels},
      {"layers_per_block", c.num_res_blocks},
      {"norm_num_groups", c.norm_num_groups},
      {"out_channels", c.out_channels},
      {"sample_size", c.sample_size},
      {"scaling_factor", c.scaling_factor},
      {"up_block_types", Json(std::vector<std::string>(c.levels(), "UpDecoderBlock2D"))},
  };
}

Json text_encoder_config_json(const TextEncoderConfig& c, bool with_projection) {
  return {
      {"architectures",
       Json::array({with_projection ? "CLIPTextModelWithProjection" : "CLIPTextModel"})},
      {"attention_dropout", 0.0},
      {"bos_token_id", 0},
      {"dropout", 0.0},
      {"eos_token_id", 2},
      {"hidden_act", c.hidden_act},
      {"hidden_size", c.hidden_size},
      {"initializer_factor", 1.0},
      {"initializer_range", 0.02},
      {"intermediate_size", c.intermediate_size},
      {"layer_norm_eps", 1e-5},
      {"max_position_embeddings", c.max_position_embeddings},
      {"model_type", "clip_text_model"},
      {"num_attention_heads", c.num_attention_heads},
      {"num_hidden_layers", c.num_hidden_layers},
      {"pad_token_id", 1},
      {"projection_dim", c.projection_dim},
      {"vocab_size", c.vocab_size},
  };
}

}  // namespace ebb::synth
