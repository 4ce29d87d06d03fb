#pragma once
// The LDM SpatialTransformer (diffusers Transformer2DModel): group norm, projection into
// tokens, `depth` cross-attention transformer blocks, projection back, residual. The
// projections are 1x1 convolutions in SD 1.x and linear layers in SD 2.x/XL; both are the same
// product over channels, so either weight layout is read as a linear layer on [B, H·W, C].
#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "weights/weight_store.h"

namespace ebb {

struct SpatialTransformerShape {
  int64_t heads;
  int depth;  // transformer blocks
};

// x [B, C, H, W]; context [B, Lc, D]. `prefix` names the block within `component`
// (e.g. "input_blocks.1.1."); each transformer block is leased on its own.
Tensor spatial_transformer(Backend& backend, WeightStore& store, const std::string& component,
                           const std::string& prefix, const Tensor& x, const Tensor& context,
                           const SpatialTransformerShape& shape);

}  // namespace ebb
