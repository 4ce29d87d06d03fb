#pragma once
// The autoencoder's self-attention block (CompVis `AttnBlock`): group norm, then single-head
// attention over the H·W positions with C channels, projected back and added to the input.
// q, k, v and proj_out are 1×1 convolutions, stored as [C, C, 1, 1] or, in some converted
// files, as [C, C]; both run as linear layers over the positions.
#include "backend/backend.h"
#include "nn/leased_weights.h"

namespace ebb {

// x [N, C, H, W] → [N, C, H, W]; `w` leases the block's prefix (`….attn_1.`).
Tensor vae_attention_block(Backend& backend, const LeasedWeights& w, const Tensor& x);

}  // namespace ebb
