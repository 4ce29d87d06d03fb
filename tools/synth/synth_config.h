#pragma once
// The numbers that define each synthetic architecture, at full size (the released
// checkpoints' configs) and tiny size (the same structure with small widths, for tests). They
// live here and nowhere else. Each field names its diffusers/transformers config key, so the
// same numbers can build diffusers reference models.
#include <string>
#include <vector>

namespace ebb::synth {

// LDM/SGM `UNetModel`; diffusers `UNet2DConditionModel`.
struct UNetConfig {
  int in_channels;                     // in_channels
  int out_channels;                    // out_channels
  int model_channels;                  // block_out_channels[0]
  std::vector<int> channel_mult;       // block_out_channels[i] = model_channels * channel_mult[i]
  int num_res_blocks;                  // layers_per_block
  std::vector<bool> attention;         // per level: down_block_types[i] == "CrossAttnDownBlock2D"
  std::vector<int> transformer_depth;  // transformer_layers_per_block; the mid block uses the last
  int num_heads;    // attention_head_dim (a head count, despite the name); 0: use head_dim
  int head_dim;     // LDM num_head_channels: attention_head_dim[i] = channels(i) / head_dim
  int context_dim;  // cross_attention_dim
  bool use_linear_projection;   // use_linear_projection
  int adm_in_channels;          // projection_class_embeddings_input_dim; 0: no label_emb
  int addition_time_embed_dim;  // addition_time_embed_dim (SDXL "text_time"); 0: none
  int sample_size;              // sample_size (latent pixels)

  int levels() const { return static_cast<int>(channel_mult.size()); }
  int channels(int level) const { return model_channels * channel_mult[level]; }
  int heads(int level) const { return num_heads > 0 ? num_heads : channels(level) / head_dim; }
  int time_embed_dim() const { return model_channels * 4; }
};

// LDM `AutoencoderKL` (CompVis encoder/decoder); diffusers `AutoencoderKL`.
struct VaeConfig {
  int in_channels;           // in_channels
  int out_channels;          // out_channels
  int ch;                    // block_out_channels[0]
  std::vector<int> ch_mult;  // block_out_channels[i] = ch * ch_mult[i]
  int num_res_blocks;        // layers_per_block (the decoder has one more per level)
  int z_channels;            // latent_channels (LDM embed_dim is the same)
  int norm_num_groups;       // norm_num_groups
  int sample_size;           // sample_size (image pixels)
  double scaling_factor;     // scaling_factor

  int levels() const { return static_cast<int>(ch_mult.size()); }
};

// OpenAI CLIP text tower (transformers `CLIPTextModel`) or OpenCLIP's, which diffusers converts
// to the same class.
struct TextEncoderConfig {
  int vocab_size;               // vocab_size
  int hidden_size;              // hidden_size (OpenCLIP width)
  int intermediate_size;        // intermediate_size (OpenCLIP width * mlp_ratio)
  int num_hidden_layers;        // num_hidden_layers (OpenCLIP layers)
  int num_attention_heads;      // num_attention_heads (OpenCLIP heads)
  int max_position_embeddings;  // max_position_embeddings (OpenCLIP context_length)
  int projection_dim;           // projection_dim (OpenCLIP embed_dim, text_projection's width)
  std::string hidden_act;       // hidden_act: "quick_gelu" (OpenAI), "gelu" (OpenCLIP)
};

// Stable Diffusion 1.x (v1-inference.yaml): CLIP ViT-L/14 text encoder.
struct Sd1Config {
  UNetConfig unet;
  VaeConfig vae;
  TextEncoderConfig clip_l;
  static Sd1Config full();
  static Sd1Config tiny();
};

// Stable Diffusion 2.x, 768-v (v2-inference-v.yaml): OpenCLIP ViT-H/14 text encoder.
struct Sd2Config {
  UNetConfig unet;
  VaeConfig vae;
  TextEncoderConfig open_clip_h;
  static Sd2Config full();
  static Sd2Config tiny();
};

// SDXL base 1.0 (sd_xl_base.yaml): CLIP ViT-L/14 and OpenCLIP ViT-bigG/14 text encoders.
struct SdxlConfig {
  UNetConfig unet;
  VaeConfig vae;
  TextEncoderConfig clip_l;
  TextEncoderConfig open_clip_g;
  static SdxlConfig full();
  static SdxlConfig tiny();
};

}  // namespace ebb::synth
