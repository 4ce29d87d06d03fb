#pragma once
// Device side of StridedShape: the innermost dimension is walked in 16-byte chunks, the outer
// ones are decoded from a row index.
#include "backend/cuda/kernels/numeric.cuh"
#include "backend/cuda/kernels/strided_shape.h"

namespace ebb::cuda {

// A shape of rank 0 (one element) as rank 1, so kernels always have an innermost dimension.
template <int kOperands>
StridedShape<kOperands> with_inner_dim(StridedShape<kOperands> s) {
  if (s.rank == 0) {
    s.rank = 1;
    s.size[0] = 1;
  }
  return s;
}

// Element offsets of row `row` (an index over every dimension but the innermost).
template <int kOperands>
__device__ __forceinline__ void row_offsets(const StridedShape<kOperands>& s, int64_t row,
                                            int64_t (&off)[kOperands]) {
#pragma unroll
  for (int k = 0; k < kOperands; ++k) off[k] = 0;
#pragma unroll
  for (int d = kMaxDims - 2; d >= 0; --d) {
    if (d > s.rank - 2) continue;
    int64_t i;
    divmod(row, s.size[d], row, i);
#pragma unroll
    for (int k = 0; k < kOperands; ++k) off[k] += i * s.stride[k][d];
  }
}

// n <= kVec<T> elements `stride` apart as f32: vectorised when contiguous, one load repeated
// when broadcast.
template <class T>
__device__ __forceinline__ void load_strided_f32(const T* p, int64_t stride, int n, float* out) {
  if (stride == 1) {
    load_f32(p, n, out);
  } else if (stride == 0) {
    const float v = to_f32(*p);
#pragma unroll
    for (int i = 0; i < kVec<T>; ++i) out[i] = v;
  } else {
#pragma unroll
    for (int i = 0; i < kVec<T>; ++i)
      if (i < n) out[i] = to_f32(p[i * stride]);
  }
}

}  // namespace ebb::cuda
