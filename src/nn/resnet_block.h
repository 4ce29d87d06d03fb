#pragma once
// The LDM/SGM UNet's ResBlock (original names: in_layers.{0 norm, 2 conv}, emb_layers.1,
// out_layers.{0 norm, 3 conv}, skip_connection): two 3x3 convolutions with the timestep
// embedding added between them, and a 1x1 convolution on the shortcut when channels change.
#include <cstdint>

#include "backend/backend.h"
#include "nn/leased_weights.h"

namespace ebb {

// x [B, C_in, H, W]; emb_silu [B, E]: the time embedding after SiLU (emb_layers.0), computed
// once per step for every block. -> [B, out_channels, H, W].
Tensor resnet_block(Backend& backend, const LeasedWeights& weights, const Tensor& x,
                    const Tensor& emb_silu, int64_t out_channels);

}  // namespace ebb
