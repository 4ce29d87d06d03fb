#include <fmt/format.h>

#include "synth/model_tensors.h"

namespace ebb::synth {

void add_clip_text(TensorCollector& out, const TextEncoderConfig& config) {
  const int64_t h = config.hidden_size;
  const ModulePath text{"text_model", "text_model"};
  const ModulePath embeddings = text.child("embeddings");
  out.add(embeddings.child("token_embedding"), "weight", {config.vocab_size, h});
  out.add(embeddings.child("position_embedding"), "weight", {config.max_position_embeddings, h});
  // Released checkpoints carry the position-id buffer (transformers saved it until 4.31).
  const std::string position_ids = "text_model.embeddings.position_ids";
  out.original_only(position_ids, {1, config.max_position_embeddings}, Init::PositionIds);
  out.diffusers_only(position_ids, {1, config.max_position_embeddings}, Init::PositionIds);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    const ModulePath layer = text.child(fmt::format("encoder.layers.{}", l));
    for (const char* proj : {"k_proj", "v_proj", "q_proj", "out_proj"})
      out.linear(layer.child("self_attn").child(proj), h, h);
    out.norm(layer.child("layer_norm1"), h);
    out.linear(layer.child("mlp.fc1"), config.intermediate_size, h);
    out.linear(layer.child("mlp.fc2"), h, config.intermediate_size);
    out.norm(layer.child("layer_norm2"), h);
  }
  out.norm(text.child("final_layer_norm"), h);
}

void add_open_clip_text(TensorCollector& out, const TextEncoderConfig& config, int diffusers_layers,
                        bool diffusers_projection) {
  const int64_t h = config.hidden_size;
  const int64_t positions = config.max_position_embeddings;
  out.add_as("positional_embedding", "text_model.embeddings.position_embedding.weight",
             {positions, h});
  out.diffusers_only("text_model.embeddings.position_ids", {1, positions}, Init::PositionIds);
  // OpenCLIP multiplies by text_projection; a Linear holds the transpose.
  out.original_only("text_projection", {h, config.projection_dim});
  if (diffusers_projection)
    out.diffusers_transposed("text_projection.weight", {config.projection_dim, h},
                             "text_projection");
  out.original_only("logit_scale", {}, Init::LogitScale);

  for (int l = 0; l < config.num_hidden_layers; ++l) {
    const std::string block = fmt::format("transformer.resblocks.{}", l);
    const std::string layer = fmt::format("text_model.encoder.layers.{}", l);
    const bool kept = l < diffusers_layers;
    auto pair = [&](const std::string& original, const std::string& diffusers,
                    std::vector<int64_t> shape) {
      if (kept)
        out.add_as(block + original, layer + diffusers, std::move(shape));
      else
        out.original_only(block + original, std::move(shape));
    };
    pair(".ln_1.weight", ".layer_norm1.weight", {h});
    pair(".ln_1.bias", ".layer_norm1.bias", {h});
    // nn.MultiheadAttention packs q, k and v into one projection, in that order.
    out.original_only(block + ".attn.in_proj_weight", {3 * h, h});
    out.original_only(block + ".attn.in_proj_bias", {3 * h});
    if (kept) {
      const char* names[] = {"q_proj", "k_proj", "v_proj"};
      for (int i = 0; i < 3; ++i) {
        const std::string proj = fmt::format("{}.self_attn.{}", layer, names[i]);
        out.diffusers_slice(proj + ".weight", {h, h}, block + ".attn.in_proj_weight",
                            static_cast<uint64_t>(i * h * h));
        out.diffusers_slice(proj + ".bias", {h}, block + ".attn.in_proj_bias",
                            static_cast<uint64_t>(i * h));
      }
    }
    pair(".attn.out_proj.weight", ".self_attn.out_proj.weight", {h, h});
    pair(".attn.out_proj.bias", ".self_attn.out_proj.bias", {h});
    pair(".ln_2.weight", ".layer_norm2.weight", {h});
    pair(".ln_2.bias", ".layer_norm2.bias", {h});
    pair(".mlp.c_fc.weight", ".mlp.fc1.weight", {config.intermediate_size, h});
    pair(".mlp.c_fc.bias", ".mlp.fc1.bias", {config.intermediate_size});
    pair(".mlp.c_proj.weight", ".mlp.fc2.weight", {h, config.intermediate_size});
    pair(".mlp.c_proj.bias", ".mlp.fc2.bias", {h});
  }
  out.add_as("token_embedding.weight", "text_model.embeddings.token_embedding.weight",
             {config.vocab_size, h});
  out.add_as("ln_final.weight", "text_model.final_layer_norm.weight", {h});
  out.add_as("ln_final.bias", "text_model.final_layer_norm.bias", {h});
}

}  // namespace ebb::synth
