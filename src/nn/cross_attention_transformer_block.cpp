#include "nn/cross_attention_transformer_block.h"

#include <string>

#include "nn/weight_shape_check.h"

namespace ebb {
namespace {

constexpr float kLayerNormEps = 1e-5f;

Tensor norm(Backend& backend, const LeasedWeights& weights, const std::string& name,
            const Tensor& x) {
  return backend.layer_norm(x, weights.get(name + ".weight"), weights.get(name + ".bias"),
                            kLayerNormEps);
}

// Attention of `x` on `source` (x itself for self-attention); q, k, v have no bias.
Tensor attention(Backend& backend, const LeasedWeights& weights, const std::string& name,
                 const Tensor& x, const Tensor& source, int64_t heads) {
  const int64_t channels = x.dim(-1);
  const Tensor q = backend.linear(
      x, get_with_shape(weights, name + ".to_q.weight", {channels, channels}), Tensor{});
  const Tensor k = backend.linear(
      source, get_with_shape(weights, name + ".to_k.weight", {channels, source.dim(-1)}), Tensor{});
  const Tensor v = backend.linear(
      source, get_with_shape(weights, name + ".to_v.weight", {channels, source.dim(-1)}), Tensor{});
  return backend.linear(backend.attention(q, k, v, heads), weights.get(name + ".to_out.0.weight"),
                        weights.get(name + ".to_out.0.bias"));
}

}  // namespace

Tensor cross_attention_transformer_block(Backend& backend, const LeasedWeights& weights,
                                         const Tensor& x, const Tensor& context, int64_t heads) {
  Tensor n = norm(backend, weights, "norm1", x);
  Tensor h = backend.add(x, attention(backend, weights, "attn1", n, n, heads));
  n = norm(backend, weights, "norm2", h);
  h = backend.add(h, attention(backend, weights, "attn2", n, context, heads));
  n = norm(backend, weights, "norm3", h);
  const Tensor hidden = backend.geglu(
      backend.linear(n, weights.get("ff.net.0.proj.weight"), weights.get("ff.net.0.proj.bias")));
  return backend.add(
      h, backend.linear(hidden, weights.get("ff.net.2.weight"), weights.get("ff.net.2.bias")));
}

}  // namespace ebb
