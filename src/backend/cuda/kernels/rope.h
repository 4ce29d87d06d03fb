#pragma once
// Rotary position embedding on the GPU, the twin of backend/cpu/kernels/rope.h: the same pair
// layouts, tables and arithmetic (x·cos - y·sin without fused multiply-adds), so f32 results
// equal the CPU's. x and y are f32, f16 or bf16; the tables are always f32.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cpu/kernels/strides.h"

namespace ebb::cuda {

// cpu::RopeLayout, whose header this C++17 code cannot include.
enum class RopePairs {
  Interleaved,  // pair p is (x[2p], x[2p+1]): cpu::RopeLayout::InterleavedPairs (Flux)
  SplitHalves,  // pair p is (x[p], x[p + D/2]): cpu::RopeLayout::SplitHalves
};

// y = rotate(x) for x, y indexed [batch, head, token, channel] through their element strides;
// y may be x itself with the same strides. cos and sin are dense [tokens, head_dim / 2].
// ebb::Error for a bad shape (head_dim must be even) or a failed launch.
template <class T>
void rope(const T* x, const cpu::Strides4& x_strides, T* y, const cpu::Strides4& y_strides,
          int64_t batch, int64_t heads, int64_t tokens, int64_t head_dim, const float* cos,
          const float* sin, RopePairs pairs, cudaStream_t stream);

// Flux's tables, as cpu::rope_tables: ids [tokens, axes] (device), axes_dim[axes] (host,
// positive and even, at most 8 axes); cos and sin [tokens, Σ axes_dim / 2] (device). Angles in
// double, rounded once.
void rope_tables(const float* ids, int64_t tokens, const int64_t* axes_dim, int axes, double theta,
                 float* cos, float* sin, cudaStream_t stream);

}  // namespace ebb::cuda
