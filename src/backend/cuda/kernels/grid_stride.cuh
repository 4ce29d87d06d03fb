#pragma once
// The grid-stride loop of the elementwise kernels: launched with grid_for's capped grid
// (launch.h), each thread takes every (grid size)-th index, so any size runs on a few waves of
// blocks.
#include <cstdint>

namespace ebb::cuda {

template <class Body>
__device__ __forceinline__ void for_each_index(int64_t n, Body&& body) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    body(i);
}

}  // namespace ebb::cuda
