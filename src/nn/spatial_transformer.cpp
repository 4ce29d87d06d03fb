#include "nn/spatial_transformer.h"

#include <fmt/format.h>

#include "core/error.h"
#include "nn/cross_attention_transformer_block.h"
#include "nn/leased_weights.h"

namespace ebb {
namespace {

constexpr int64_t kGroups = 32;
constexpr float kNormEps = 1e-6f;  // LDM's Normalize(), unlike the ResBlock's GroupNorm32

// proj_in/proj_out as [C_out, C_in]: a linear weight, or a 1x1 convolution's viewed as one.
Tensor projection(const LeasedWeights& weights, const std::string& name, int64_t channels) {
  const Tensor w = weights.get(name);
  const bool linear = w.shape() == Shape{channels, channels};
  const bool conv = w.shape() == Shape{channels, channels, 1, 1};
  if (!linear && !conv) {
    fail("weight {}{} has shape {}, but the model config expects [{}, {}] or [{}, {}, 1, 1]",
         weights.prefix(), name, shape_str(w.shape()), channels, channels, channels, channels);
  }
  return conv ? w.reshape({channels, channels}) : w;
}

}  // namespace

Tensor spatial_transformer(Backend& backend, WeightStore& store, const std::string& component,
                           const std::string& prefix, const Tensor& x, const Tensor& context,
                           const SpatialTransformerShape& shape) {
  const int64_t batch = x.dim(0), channels = x.dim(1), height = x.dim(2), width = x.dim(3);
  if (shape.heads <= 0 || channels % shape.heads != 0) {
    fail("{}: {} channels do not split into {} attention heads", prefix, channels, shape.heads);
  }
  Tensor tokens;
  {
    const LeasedWeights weights(store, component, prefix);
    const Tensor normed = backend.group_norm(x, kGroups, weights.get("norm.weight"),
                                             weights.get("norm.bias"), kNormEps);
    tokens = backend.linear(
        backend.permute(normed.reshape({batch, channels, height * width}), {0, 2, 1}),
        projection(weights, "proj_in.weight", channels), weights.get("proj_in.bias"));
  }
  for (int m = 0; m < shape.depth; ++m) {
    const LeasedWeights block(store, component, fmt::format("{}transformer_blocks.{}.", prefix, m));
    tokens = cross_attention_transformer_block(backend, block, tokens, context, shape.heads);
  }
  const std::string extra =
      fmt::format("{}transformer_blocks.{}.norm1.weight", prefix, shape.depth);
  if (store.source().find(component, extra)) {
    fail("{} has tensor {}, more transformer blocks than the model config's {}", component, extra,
         shape.depth);
  }
  const LeasedWeights weights(store, component, prefix);
  const Tensor projected = backend.linear(tokens, projection(weights, "proj_out.weight", channels),
                                          weights.get("proj_out.bias"));
  const Tensor image =
      backend.permute(projected, {0, 2, 1}).reshape({batch, channels, height, width});
  return backend.add(x, image);
}

}  // namespace ebb
