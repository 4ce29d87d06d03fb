#pragma once
// Element strides of a 4-d view, outermost first. Kernels read and write through them, so a
// caller can hand over [B, H, L, D] or [B, L, H, D] memory (or a broadcast, with a zero
// stride) without copying.
#include <cstdint>

namespace ebb::cpu {

struct Strides4 {
  int64_t batch = 0;
  int64_t head = 0;
  int64_t row = 0;  // token (or query, for a mask)
  int64_t col = 0;  // channel within the head (or key, for a mask)
};

// Contiguous [batch, heads, len, dim].
inline Strides4 bhld_strides(int64_t heads, int64_t len, int64_t dim) {
  return {heads * len * dim, len * dim, dim, 1};
}

// Contiguous [batch, len, heads, dim]: the layout a linear projection produces.
inline Strides4 blhd_strides(int64_t heads, int64_t len, int64_t dim) {
  return {len * heads * dim, dim, heads * dim, 1};
}

}  // namespace ebb::cpu
