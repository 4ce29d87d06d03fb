#pragma once
// Host-side description of an iteration over up to kMaxDims dimensions shared by several
// operands, each with its own element strides (0 repeats an operand along a dimension). Before
// a launch, dimensions of size 1 are dropped and neighbours that every operand walks as one
// are merged, so the common cases reach the kernels as one or two dimensions.
#include <cstdint>

#include "core/error.h"

namespace ebb::cuda {

constexpr int kMaxDims = 6;

template <int kOperands>
struct StridedShape {
  int rank = 0;  // 0: a single element
  int64_t size[kMaxDims] = {};
  int64_t stride[kOperands][kMaxDims] = {};

  int64_t elements() const {
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= size[d];
    return n;
  }
};

// sizes[rank] and strides[k][rank], outermost first. ebb::Error (naming `op`) for a negative
// size or more than kMaxDims dimensions after merging.
template <int kOperands>
StridedShape<kOperands> collapse_dims(const char* op, const int64_t* sizes,
                                      const int64_t* const (&strides)[kOperands], int rank) {
  StridedShape<kOperands> s;
  for (int d = 0; d < rank; ++d) {
    if (sizes[d] < 0) fail("{}: negative size {} in dimension {}", op, sizes[d], d);
    if (sizes[d] == 0) {
      s.rank = 1;
      s.size[0] = 0;
      return s;
    }
  }
  for (int d = 0; d < rank; ++d) {
    if (sizes[d] == 1) continue;
    bool merges = s.rank > 0;
    for (int k = 0; k < kOperands && merges; ++k)
      merges = s.stride[k][s.rank - 1] == strides[k][d] * sizes[d];
    if (merges) {
      s.size[s.rank - 1] *= sizes[d];
      for (int k = 0; k < kOperands; ++k) s.stride[k][s.rank - 1] = strides[k][d];
      continue;
    }
    if (s.rank == kMaxDims)
      fail("{}: more than {} dimensions after merging contiguous ones", op, kMaxDims);
    s.size[s.rank] = sizes[d];
    for (int k = 0; k < kOperands; ++k) s.stride[k][s.rank] = strides[k][d];
    ++s.rank;
  }
  return s;
}

}  // namespace ebb::cuda
