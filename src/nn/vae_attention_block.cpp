#include "nn/vae_attention_block.h"

#include "core/error.h"
#include "nn/vae_resnet_block.h"

namespace ebb {
namespace {

// A 1×1 convolution's weight as the [C, C] matrix of a linear layer.
Tensor projection(const LeasedWeights& w, const std::string& name, int64_t channels) {
  const Tensor weight = w.get(name);
  const Shape& s = weight.shape();
  const bool matrix = s.size() == 2 && s[0] == channels && s[1] == channels;
  const bool conv = s.size() == 4 && s[0] == channels && s[1] == channels && s[2] == 1 && s[3] == 1;
  if (!matrix && !conv) {
    fail("VAE attention weight {}{} is {}; expected [{}, {}, 1, 1] or [{}, {}]", w.prefix(), name,
         weight.describe(), channels, channels, channels, channels);
  }
  return weight.reshape({channels, channels});
}

}  // namespace

Tensor vae_attention_block(Backend& backend, const LeasedWeights& w, const Tensor& x) {
  const int64_t n = x.dim(0), c = x.dim(1), positions = x.dim(2) * x.dim(3);
  const Tensor normed =
      backend.group_norm(x, kVaeNormGroups, w.get("norm.weight"), w.get("norm.bias"), kVaeNormEps);
  const Tensor tokens = backend.permute(normed.reshape({n, c, positions}), {0, 2, 1});
  const Tensor q = backend.linear(tokens, projection(w, "q.weight", c), w.get("q.bias"));
  const Tensor k = backend.linear(tokens, projection(w, "k.weight", c), w.get("k.bias"));
  const Tensor v = backend.linear(tokens, projection(w, "v.weight", c), w.get("v.bias"));
  const Tensor attended = backend.attention(q, k, v, 1);
  const Tensor projected =
      backend.linear(attended, projection(w, "proj_out.weight", c), w.get("proj_out.bias"));
  const Tensor back = backend.permute(projected, {0, 2, 1}).reshape(x.shape());
  return backend.add(x, back);
}

}  // namespace ebb
