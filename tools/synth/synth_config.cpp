#include "synth/synth_config.h"

namespace ebb::synth {
namespace {

constexpr int kClipVocab = 49408;  // the CLIP BPE tokenizer's vocabulary, shared by all three
constexpr int kClipPositions = 77;
constexpr double kSdVaeScale = 0.18215;
constexpr double kSdxlVaeScale = 0.13025;

VaeConfig full_vae(int sample_size, double scaling_factor) {
  return {.in_channels = 3,
          .out_channels = 3,
          .ch = 128,
          .ch_mult = {1, 2, 4, 4},
          .num_res_blocks = 2,
          .z_channels = 4,
          .norm_num_groups = 32,
          .sample_size = sample_size,
          .scaling_factor = scaling_factor};
}

VaeConfig tiny_vae(double scaling_factor) {
  return {.in_channels = 3,
          .out_channels = 3,
          .ch = 32,
          .ch_mult = {1, 2},
          .num_res_blocks = 1,
          .z_channels = 4,
          .norm_num_groups = 32,
          .sample_size = 32,
          .scaling_factor = scaling_factor};
}

TextEncoderConfig full_clip_l() {
  return {.vocab_size = kClipVocab,
          .hidden_size = 768,
          .intermediate_size = 3072,
          .num_hidden_layers = 12,
          .num_attention_heads = 12,
          .max_position_embeddings = kClipPositions,
          .projection_dim = 768,
          .hidden_act = "quick_gelu"};
}

// 37 is deliberately not a multiple of anything, so transposed or mixed-up dimensions show.
TextEncoderConfig tiny_text_encoder(const std::string& hidden_act) {
  return {.vocab_size = kClipVocab,
          .hidden_size = 32,
          .intermediate_size = 37,
          .num_hidden_layers = 2,
          .num_attention_heads = 4,
          .max_position_embeddings = kClipPositions,
          .projection_dim = 32,
          .hidden_act = hidden_act};
}

UNetConfig tiny_unet() {
  return {.in_channels = 4,
          .out_channels = 4,
          .model_channels = 32,
          .channel_mult = {1, 2},
          .num_res_blocks = 1,
          .attention = {true, true},
          .transformer_depth = {1, 1},
          .num_heads = 2,
          .head_dim = 0,
          .context_dim = 32,
          .use_linear_projection = false,
          .adm_in_channels = 0,
          .addition_time_embed_dim = 0,
          .sample_size = 16};
}

}  // namespace

Sd1Config Sd1Config::full() {
  return {.unet = {.in_channels = 4,
                   .out_channels = 4,
                   .model_channels = 320,
                   .channel_mult = {1, 2, 4, 4},
                   .num_res_blocks = 2,
                   .attention = {true, true, true, false},
                   .transformer_depth = {1, 1, 1, 1},
                   .num_heads = 8,
                   .head_dim = 0,
                   .context_dim = 768,
                   .use_linear_projection = false,
                   .adm_in_channels = 0,
                   .addition_time_embed_dim = 0,
                   .sample_size = 64},
          .vae = full_vae(512, kSdVaeScale),
          .clip_l = full_clip_l()};
}

Sd1Config Sd1Config::tiny() {
  return {
      .unet = tiny_unet(), .vae = tiny_vae(kSdVaeScale), .clip_l = tiny_text_encoder("quick_gelu")};
}

Sd2Config Sd2Config::full() {
  Sd2Config config{.unet = Sd1Config::full().unet,
                   .vae = full_vae(768, kSdVaeScale),
                   .open_clip_h = {.vocab_size = kClipVocab,
                                   .hidden_size = 1024,
                                   .intermediate_size = 4096,
                                   .num_hidden_layers = 24,
                                   .num_attention_heads = 16,
                                   .max_position_embeddings = kClipPositions,
                                   .projection_dim = 1024,
                                   .hidden_act = "gelu"}};
  config.unet.num_heads = 0;
  config.unet.head_dim = 64;
  config.unet.context_dim = 1024;
  config.unet.use_linear_projection = true;
  config.unet.sample_size = 96;
  return config;
}

Sd2Config Sd2Config::tiny() {
  Sd2Config config{
      .unet = tiny_unet(), .vae = tiny_vae(kSdVaeScale), .open_clip_h = tiny_text_encoder("gelu")};
  config.unet.num_heads = 0;
  config.unet.head_dim = 8;
  config.unet.use_linear_projection = true;
  return config;
}

SdxlConfig SdxlConfig::full() {
  return {
      .unet = {.in_channels = 4,
               .out_channels = 4,
               .model_channels = 320,
               .channel_mult = {1, 2, 4},
               .num_res_blocks = 2,
               .attention = {false, true, true},
               .transformer_depth = {1, 2, 10},
               .num_heads = 0,
               .head_dim = 64,
               .context_dim = 768 + 1280,
               .use_linear_projection = true,
               .adm_in_channels = 1280 + 6 * 256,  // pooled bigG output + 6 size/crop embeddings
               .addition_time_embed_dim = 256,
               .sample_size = 128},
      .vae = full_vae(1024, kSdxlVaeScale),
      .clip_l = full_clip_l(),
      .open_clip_g = {.vocab_size = kClipVocab,
                      .hidden_size = 1280,
                      .intermediate_size = 5120,
                      .num_hidden_layers = 32,
                      .num_attention_heads = 20,
                      .max_position_embeddings = kClipPositions,
                      .projection_dim = 1280,
                      .hidden_act = "gelu"}};
}

// SDXL's structure at tiny width: no attention on the first level, and a transformer deeper
// than one block where attention is.
SdxlConfig SdxlConfig::tiny() {
  SdxlConfig config{.unet = tiny_unet(),
                    .vae = tiny_vae(kSdxlVaeScale),
                    .clip_l = tiny_text_encoder("quick_gelu"),
                    .open_clip_g = tiny_text_encoder("gelu")};
  config.unet.attention = {false, true};
  config.unet.transformer_depth = {1, 2};
  config.unet.num_heads = 0;
  config.unet.head_dim = 8;
  config.unet.context_dim = config.clip_l.hidden_size + config.open_clip_g.hidden_size;
  config.unet.use_linear_projection = true;
  config.unet.addition_time_embed_dim = 8;
  config.unet.adm_in_channels = config.open_clip_g.projection_dim + 6 * 8;
  return config;
}

}  // namespace ebb::synth
