#include "nn/clip_text_transformer.h"

#include <utility>
#include <vector>

#include "core/error.h"
#include "fmt/format.h"
#include "nn/causal_attention_mask.h"
#include "nn/token_embedding.h"

namespace ebb {
namespace {

constexpr int64_t kClipHeadWidth = 64;
constexpr float kClipNormEps = 1e-5f;

}  // namespace

ClipTextTransformer::ClipTextTransformer(WeightStore& store, std::string component,
                                         ClipTextLayout layout, int64_t heads)
    : store_(store), component_(std::move(component)), layout_(std::move(layout)) {
  if (!store_.source().component(component_))
    fail("text encoder: the model has no {} component", component_);
  const IndexedTensor& tokens = require(layout_.token_embedding.full_name());
  const IndexedTensor& positions = require(layout_.position_embedding.full_name());
  if (tokens.info.shape.size() != 2 || positions.info.shape.size() != 2 ||
      positions.info.shape[1] != tokens.info.shape[1])
    fail("{}: token embedding {} and position embedding {} do not fit together", component_,
         tokens.info.name, positions.info.name);
  width_ = tokens.info.shape[1];
  positions_ = positions.info.shape[0];
  while (store_.source().find(component_, layout_.layer_block(layers_) + layout_.layer_probe))
    ++layers_;
  if (layers_ == 0)
    fail("{}: no encoder layer (no tensor {})", component_,
         layout_.layer_block(0) + layout_.layer_probe);
  if (heads == 0) {
    if (width_ % kClipHeadWidth != 0)
      fail("{}: width {} is not a whole number of {}-wide heads; give the head count", component_,
           width_, kClipHeadWidth);
    heads = width_ / kClipHeadWidth;
  }
  if (heads <= 0 || width_ % heads != 0)
    fail("{}: {} heads do not divide the width {}", component_, heads, width_);
  layer_config_ = {heads, layout_.activation, kClipNormEps};
}

const IndexedTensor& ClipTextTransformer::require(const std::string& name) const {
  const IndexedTensor* t = store_.source().find(component_, name);
  if (!t) fail("{}: missing tensor {}", component_, name);
  return *t;
}

Tensor ClipTextTransformer::embed(Backend& backend, std::span<const int32_t> ids) const {
  const auto length = static_cast<int64_t>(ids.size());
  if (length == 0 || length > positions_)
    fail("{}: {} tokens, the encoder takes 1 to {}", component_, length, positions_);
  Tensor tokens;
  {
    LeasedWeights w(store_, component_, layout_.token_embedding.block);
    tokens = gather_embedding_rows(backend, w.get(layout_.token_embedding.name), ids);
  }
  // The position table is a weight of any dtype while add reads f32: gather the rows used.
  std::vector<int32_t> position_ids(ids.size());
  for (size_t i = 0; i < position_ids.size(); ++i) position_ids[i] = static_cast<int32_t>(i);
  LeasedWeights w(store_, component_, layout_.position_embedding.block);
  const Tensor position_rows =
      gather_embedding_rows(backend, w.get(layout_.position_embedding.name), position_ids);
  return backend.add(tokens, position_rows).reshape({1, length, width_});
}

Tensor ClipTextTransformer::final_norm(Backend& backend, const Tensor& hidden) const {
  LeasedWeights w(store_, component_, layout_.final_norm_block);
  return backend.layer_norm(hidden, w.get("weight"), w.get("bias"), kClipNormEps);
}

ClipTextOutput ClipTextTransformer::run(Backend& backend, std::span<const int32_t> ids,
                                        const ClipTextRequest& request) const {
  const int missing = layout_.missing_final_layers;
  if (request.skip <= missing || request.skip > layers_ + missing)
    fail("{}: clip skip {} is outside {} to {} (the stored layers{})", component_, request.skip,
         missing + 1, layers_ + missing,
         missing ? fmt::format("; the last {} of the original are not stored", missing) : "");
  if (request.last_normed && missing)
    fail("{}: pooling needs the last layer, which this tower does not store", component_);
  const int wanted = layers_ + missing - request.skip + 1;  // layers run for hidden_states[-skip]
  const int last = request.last_normed ? layers_ : wanted;
  const Tensor mask = causal_attention_mask(backend, static_cast<int64_t>(ids.size()));

  ClipTextOutput out;
  Tensor x = embed(backend, ids);
  for (int i = 0; i < last; ++i) {
    {
      LeasedWeights w(store_, component_, layout_.layer_block(i));
      x = transformer_encoder_layer(backend, x, layout_.layer_weights(w), layer_config_, mask);
    }
    if (i + 1 == wanted) out.hidden = request.final_norm ? final_norm(backend, x) : x;
  }
  if (request.last_normed) out.last_normed = final_norm(backend, x);
  return out;
}

}  // namespace ebb
