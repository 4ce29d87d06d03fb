#include "models/clip.h"

#include <utility>

#include "fmt/format.h"

namespace ebb {

ClipTextLayout openai_clip_text_layout() {
  ClipTextLayout layout;
  layout.token_embedding = {"text_model.embeddings.token_embedding.", "weight"};
  layout.position_embedding = {"text_model.embeddings.position_embedding.", "weight"};
  layout.final_norm_block = "text_model.final_layer_norm.";
  layout.layer_block = [](int layer) {
    return fmt::format("text_model.encoder.layers.{}.", layer);
  };
  layout.layer_probe = "layer_norm1.weight";
  layout.layer_weights = [](const LeasedWeights& w) {
    TransformerEncoderLayerWeights l;
    l.norm1_weight = w.get("layer_norm1.weight");
    l.norm1_bias = w.get("layer_norm1.bias");
    l.q_weight = w.get("self_attn.q_proj.weight");
    l.q_bias = w.get("self_attn.q_proj.bias");
    l.k_weight = w.get("self_attn.k_proj.weight");
    l.k_bias = w.get("self_attn.k_proj.bias");
    l.v_weight = w.get("self_attn.v_proj.weight");
    l.v_bias = w.get("self_attn.v_proj.bias");
    l.out_weight = w.get("self_attn.out_proj.weight");
    l.out_bias = w.get("self_attn.out_proj.bias");
    l.norm2_weight = w.get("layer_norm2.weight");
    l.norm2_bias = w.get("layer_norm2.bias");
    l.fc1_weight = w.get("mlp.fc1.weight");
    l.fc1_bias = w.get("mlp.fc1.bias");
    l.fc2_weight = w.get("mlp.fc2.weight");
    l.fc2_bias = w.get("mlp.fc2.bias");
    return l;
  };
  layout.activation = MlpActivation::QuickGelu;
  return layout;
}

ClipTextTransformer make_clip_text_encoder(WeightStore& store, std::string component,
                                           int64_t heads) {
  return ClipTextTransformer(store, std::move(component), openai_clip_text_layout(), heads);
}

}  // namespace ebb
