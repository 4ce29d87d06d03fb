#pragma once
// The autoencoder's residual block (CompVis `ResnetBlock` without a time embedding):
// norm1 → SiLU → conv1 (3×3) → norm2 → SiLU → conv2 (3×3), plus the input, through a 1×1
// `nin_shortcut` when the channel count changes.
#include "backend/backend.h"
#include "nn/leased_weights.h"

namespace ebb {

// Group norm of the CompVis autoencoder: 32 groups, eps 1e-6.
inline constexpr int64_t kVaeNormGroups = 32;
inline constexpr float kVaeNormEps = 1e-6f;

// x [N, C_in, H, W] → [N, C_out, H, W]; `w` leases the block's prefix (`….block.M.`).
Tensor vae_resnet_block(Backend& backend, const LeasedWeights& w, const Tensor& x);

}  // namespace ebb
