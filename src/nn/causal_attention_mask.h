#pragma once
// The additive mask of causal self-attention: each position sees itself and earlier ones.
#include <cstdint>

#include "backend/backend.h"
#include "tensor/tensor.h"

namespace ebb {

// F32 [length, length] on `backend`: 0 where key <= query, -inf above the diagonal.
Tensor causal_attention_mask(Backend& backend, int64_t length);

}  // namespace ebb
