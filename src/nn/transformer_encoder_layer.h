#pragma once
// A pre-LayerNorm transformer encoder layer, as in CLIP's text tower (OpenAI and OpenCLIP):
//   x = x + out_proj(attention(norm1(x)))
//   x = x + fc2(activation(fc1(norm2(x))))
#include <cstdint>

#include "backend/backend.h"
#include "tensor/tensor.h"

namespace ebb {

enum class MlpActivation {
  QuickGelu,  // x · sigmoid(1.702 x): OpenAI CLIP
  Gelu,       // exact (erf) GELU: OpenCLIP
};

struct TransformerEncoderLayerWeights {
  Tensor norm1_weight, norm1_bias;
  // Either the fused projection (q, k, v stacked along the output dimension, OpenCLIP's
  // in_proj) or three separate ones (transformers' q_proj, k_proj, v_proj).
  Tensor qkv_weight, qkv_bias;
  Tensor q_weight, q_bias, k_weight, k_bias, v_weight, v_bias;
  Tensor out_weight, out_bias;
  Tensor norm2_weight, norm2_bias;
  Tensor fc1_weight, fc1_bias, fc2_weight, fc2_bias;
};

struct TransformerEncoderLayerConfig {
  int64_t heads = 1;
  MlpActivation activation = MlpActivation::Gelu;
  float norm_eps = 1e-5f;
};

// x [B, L, D] -> [B, L, D]; mask: additive, broadcastable to [B, heads, L, L], or none.
Tensor transformer_encoder_layer(Backend& backend, const Tensor& x,
                                 const TransformerEncoderLayerWeights& w,
                                 const TransformerEncoderLayerConfig& config, const Tensor& mask);

}  // namespace ebb
