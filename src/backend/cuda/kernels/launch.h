#pragma once
// What every kernel launcher needs: launch-status checks and grid sizes.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "core/error.h"

namespace ebb::cuda {

// ebb::Error naming `op` when `err` is not cudaSuccess.
inline void check_cuda(cudaError_t err, const char* op) {
  if (err != cudaSuccess) fail("{}: CUDA error: {}", op, cudaGetErrorString(err));
}

// After a <<<...>>> launch: configuration errors surface here, execution errors at the next
// synchronisation.
inline void check_launch(const char* op) {
  check_cuda(cudaGetLastError(), op);
}

// Blocks of `threads` threads covering `items`, capped: kernels loop over what the grid does
// not cover, and a few waves of blocks per SM keep every SM busy.
inline unsigned grid_for(int64_t items, int threads) {
  constexpr int64_t kMaxBlocks = 132 * 32;
  return static_cast<unsigned>(std::clamp<int64_t>((items + threads - 1) / threads, 1, kMaxBlocks));
}

inline void check_sizes(const char* op, std::initializer_list<int64_t> sizes) {
  for (int64_t s : sizes)
    if (s < 0) fail("{}: negative size {}", op, s);
}

}  // namespace ebb::cuda
