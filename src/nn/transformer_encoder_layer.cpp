#include "nn/transformer_encoder_layer.h"

#include "core/error.h"

namespace ebb {
namespace {

Tensor scalar(Backend& backend, float value) {
  return backend.from_floats({1}, {&value, 1}, "scalar");
}

// The backend has SiLU but no sigmoid: x · sigmoid(a x) = silu(a x) / a.
Tensor quick_gelu(Backend& backend, const Tensor& x) {
  constexpr float kAlpha = 1.702f;
  const Tensor scaled = backend.silu(backend.mul(x, scalar(backend, kAlpha)));
  return backend.mul(scaled, scalar(backend, 1.0f / kAlpha));
}

Tensor self_attention(Backend& backend, const Tensor& h, const TransformerEncoderLayerWeights& w,
                      int64_t heads, const Tensor& mask) {
  if (w.qkv_weight.defined()) {
    const Tensor qkv = backend.linear(h, w.qkv_weight, w.qkv_bias);
    const int64_t width = h.dim(-1);
    if (qkv.dim(-1) != 3 * width)
      fail("transformer encoder layer: fused q/k/v projection {} does not give 3 × {} channels",
           w.qkv_weight.describe(), width);
    return backend.attention(qkv.narrow(-1, 0, width), qkv.narrow(-1, width, width),
                             qkv.narrow(-1, 2 * width, width), heads, mask);
  }
  return backend.attention(backend.linear(h, w.q_weight, w.q_bias),
                           backend.linear(h, w.k_weight, w.k_bias),
                           backend.linear(h, w.v_weight, w.v_bias), heads, mask);
}

}  // namespace

Tensor transformer_encoder_layer(Backend& backend, const Tensor& x,
                                 const TransformerEncoderLayerWeights& w,
                                 const TransformerEncoderLayerConfig& config, const Tensor& mask) {
  Tensor h = backend.layer_norm(x, w.norm1_weight, w.norm1_bias, config.norm_eps);
  h = self_attention(backend, h, w, config.heads, mask);
  const Tensor attended = backend.add(x, backend.linear(h, w.out_weight, w.out_bias));

  h = backend.layer_norm(attended, w.norm2_weight, w.norm2_bias, config.norm_eps);
  h = backend.linear(h, w.fc1_weight, w.fc1_bias);
  h = config.activation == MlpActivation::QuickGelu ? quick_gelu(backend, h) : backend.gelu(h);
  return backend.add(attended, backend.linear(h, w.fc2_weight, w.fc2_bias));
}

}  // namespace ebb
