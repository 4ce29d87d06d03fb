#include "models/open_clip.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "fmt/format.h"
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

ClipTextTransformer make_open_clip_text_encoder(WeightStore& store, std::string component,
                                                int64_t heads) {
  // diffusers saves OpenCLIP towers as transformers' CLIPTextModel: q/k/v split, the
  // projection transposed (and SD 2.x's last layer dropped), which no renaming undoes.
  const Component* c = store.source().component(component);
  if (c && c->naming == Naming::Diffusers)
    fail(
        "{}: OpenCLIP text encoders in transformers' layout (a diffusers text_encoder folder) "
        "are not supported yet; use a single-file checkpoint (or --clip_g with the original "
        "OpenCLIP weights)",
        component);
  return ClipTextTransformer(store, std::move(component), open_clip_text_layout(), heads);
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

  LeasedWeights w(encoder.store(), encoder.component(), "text_projection");
  const Tensor projection = w.get("");
  if (projection.rank() != 2 || projection.dim(0) != encoder.width())
    fail("{}: text_projection {} is not [{}, projection]", encoder.component(),
         projection.describe(), encoder.width());
  return backend.linear(row, backend.contiguous(projection.permuted({1, 0})), Tensor{});
}

}  // namespace ebb
