#pragma once
// The LDM BasicTransformerBlock (diffusers' BasicTransformerBlock with default options):
// self-attention, cross-attention on the text context, GEGLU feed-forward, each pre-normed
// with a LayerNorm and added back. Original names: norm1..3, attn1/attn2.{to_q, to_k, to_v,
// to_out.0}, ff.net.0.proj (GEGLU), ff.net.2.
#include <cstdint>

#include "backend/backend.h"
#include "nn/leased_weights.h"

namespace ebb {

// x [B, L, C]; context [B, Lc, D] -> [B, L, C].
Tensor cross_attention_transformer_block(Backend& backend, const LeasedWeights& weights,
                                         const Tensor& x, const Tensor& context, int64_t heads);

}  // namespace ebb
