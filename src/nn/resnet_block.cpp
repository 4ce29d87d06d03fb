#include "nn/resnet_block.h"

#include "core/error.h"
#include "nn/weight_shape_check.h"

namespace ebb {
namespace {

constexpr int64_t kGroups = 32;
constexpr float kEps = 1e-5f;  // LDM GroupNorm32 keeps torch's default

Tensor norm_silu(Backend& backend, const LeasedWeights& weights, const char* norm,
                 const Tensor& x) {
  const std::string name(norm);
  return backend.silu(backend.group_norm(x, kGroups, weights.get(name + ".weight"),
                                         weights.get(name + ".bias"), kEps));
}

}  // namespace

Tensor resnet_block(Backend& backend, const LeasedWeights& weights, const Tensor& x,
                    const Tensor& emb_silu, int64_t out_channels) {
  const int64_t batch = x.dim(0), in_channels = x.dim(1);
  Tensor h = backend.conv2d(
      norm_silu(backend, weights, "in_layers.0", x),
      get_with_shape(weights, "in_layers.2.weight", {out_channels, in_channels, 3, 3}),
      weights.get("in_layers.2.bias"), 1, 1);
  const Tensor emb = backend.linear(
      emb_silu, get_with_shape(weights, "emb_layers.1.weight", {out_channels, emb_silu.dim(1)}),
      weights.get("emb_layers.1.bias"));
  h = backend.add(h, emb.reshape({batch, out_channels, 1, 1}));
  h = backend.conv2d(norm_silu(backend, weights, "out_layers.0", h),
                     weights.get("out_layers.3.weight"), weights.get("out_layers.3.bias"), 1, 1);
  const Tensor skip_weight = weights.optional("skip_connection.weight");
  if (!skip_weight.defined()) {
    if (in_channels != out_channels) {
      fail("block {} changes channels {} -> {} but has no skip_connection.weight", weights.prefix(),
           in_channels, out_channels);
    }
    return backend.add(x, h);
  }
  const Tensor skip = backend.conv2d(
      x, get_with_shape(weights, "skip_connection.weight", {out_channels, in_channels, 1, 1}),
      weights.get("skip_connection.bias"), 1, 0);
  return backend.add(skip, h);
}

}  // namespace ebb
