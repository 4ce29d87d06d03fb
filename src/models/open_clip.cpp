#include "models/open_clip.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "fmt/format.h"
#include "models/clip.h"
#include "nn/leased_weights.h"

namespace ebb {

ClipTextLayout open_clip_text_layout() {
  ClipTextLayout layout;
  layout.token_embedding = {"token_embedding.", "weight"};
  layout.position_embedding = {"positional_embedding", ""};
  layout.final_norm_block = "ln_final.";
  layout.layer_block = [](int layer) { return fmt::format("transformer.resblocks.{}.", layer); };
  layout.layer_probe = "ln_1.weight";
  layout.layer_weights = [](const LeasedWeights& w) {
    TransformerEncoderLayerWeights l;
    l.norm1_weight = w.get("ln_1.weight");
    l.norm1_bias = w.get("ln_1.bias");
    l.qkv_weight = w.get("attn.in_proj_weight");
    l.qkv_bias = w.get("attn.in_proj_bias");
    l.out_weight = w.get("attn.out_proj.weight");
    l.out_bias = w.get("attn.out_proj.bias");
    l.norm2_weight = w.get("ln_2.weight");
    l.norm2_bias = w.get("ln_2.bias");
    l.fc1_weight = w.get("mlp.c_fc.weight");
    l.fc1_bias = w.get("mlp.c_fc.bias");
    l.fc2_weight = w.get("mlp.c_proj.weight");
    l.fc2_bias = w.get("mlp.c_proj.bias");
    return l;
  };
  layout.activation = MlpActivation::Gelu;
  return layout;
}

ClipTextLayout open_clip_text_layout(const ModelSource& source, const std::string& component) {
  const Component* c = source.component(component);
  if (!c || c->naming != Naming::Diffusers) return open_clip_text_layout();
  ClipTextLayout layout = openai_clip_text_layout();
  layout.activation = MlpActivation::Gelu;
  // Only SD 2.x's ViT-H is the clip_h slot; diffusers ships it with 23 of its 24 layers.
  if (component == "clip_h") layout.missing_final_layers = 1;
  return layout;
}

int64_t open_clip_projection_width(const ModelSource& source, const std::string& component) {
  if (const IndexedTensor* t = source.find(component, "text_projection.weight");
      t && !t->info.shape.empty())
    return t->info.shape.front();
  const IndexedTensor* t = source.find(component, "text_projection");
  if (!t || t->info.shape.empty()) fail("{}: tensor text_projection is missing", component);
  return t->info.shape.back();
}

ClipTextTransformer make_open_clip_text_encoder(WeightStore& store, std::string component,
                                                int64_t heads) {
  ClipTextLayout layout = open_clip_text_layout(store.source(), component);
  return ClipTextTransformer(store, std::move(component), std::move(layout), heads);
}

Tensor open_clip_pooled(Backend& backend, const ClipTextTransformer& encoder,
                        const Tensor& last_normed, std::span<const int32_t> ids) {
  const auto length = static_cast<int64_t>(ids.size());
  if (last_normed.rank() != 3 || last_normed.dim(0) != 1 || last_normed.dim(1) != length)
    fail("{}: pooling needs the last layer's output for the {} tokens, got {}", encoder.component(),
         length, last_normed.describe());
  const auto eos = static_cast<int64_t>(std::max_element(ids.begin(), ids.end()) - ids.begin());
  const Tensor row =
      backend.contiguous(last_normed.narrow(1, eos, 1)).reshape({1, encoder.width()});

  // transformers' Linear holds the [projection, width] weight linear() takes as it is.
  if (encoder.store().source().find(encoder.component(), "text_projection.weight")) {
    LeasedWeights w(encoder.store(), encoder.component(), "text_projection.");
    const Tensor weight = w.get("weight");
    if (weight.rank() != 2 || weight.dim(1) != encoder.width())
      fail("{}: text_projection.weight {} is not [projection, {}]", encoder.component(),
           weight.describe(), encoder.width());
    return backend.linear(row, weight, Tensor{});
  }
  LeasedWeights w(encoder.store(), encoder.component(), "text_projection");
  const Tensor projection = w.get("");
  if (projection.rank() != 2 || projection.dim(0) != encoder.width())
    fail("{}: text_projection {} is not [{}, projection]", encoder.component(),
         projection.describe(), encoder.width());
  return backend.linear(row, backend.contiguous(projection.permuted({1, 0})), Tensor{});
}

}  // namespace ebb
