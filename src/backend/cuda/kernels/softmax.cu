#include <cuda_runtime.h>

#include <cmath>

#include "backend/cuda/kernels/launch.h"
#include "backend/cuda/kernels/numeric.cuh"
#include "backend/cuda/kernels/softmax.h"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;

// exp(v - max), and 1 where v is the maximum, so that rows of -inf (where v - max is NaN)
// count their elements instead of poisoning the sum before a finite value arrives.
__device__ __forceinline__ float rescale(float v, float max) {
  return v == max ? 1.0f : expf(v - max);
}

// The running maximum and the sum of exp(x - max) over the values seen.
struct Running {
  float max = -INFINITY, sum = 0.0f;
  __device__ void merge(Running o) {
    const float m = fmaxf(max, o.max);
    sum = sum * rescale(max, m) + o.sum * rescale(o.max, m);
    max = m;
  }
};

__device__ __forceinline__ Running warp_merge(Running r) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Running other{__shfl_xor_sync(0xffffffffu, r.max, o), __shfl_xor_sync(0xffffffffu, r.sum, o)};
    r.merge(other);
  }
  return r;
}

template <int kTeam>
__device__ __forceinline__ Running team_merge(Running r, Running* shared) {
  r = warp_merge(r);
  if constexpr (kTeam > 32) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads();  // shared may still be read from the previous row
    if (lane == 0) shared[warp] = r;
    __syncthreads();
    r = lane < kTeam / 32 ? shared[lane] : Running{};
    r = warp_merge(r);
  }
  return r;
}

// A team of kTeam threads per row (a warp, or the whole block). x and y may be the same memory.
template <class T, int kTeam>
__global__ void __launch_bounds__(kThreads)
    softmax_kernel(const T* x, T* y, int64_t rows, int64_t cols) {
  __shared__ Running shared[32];
  constexpr int V = kVec<T>;
  const int64_t chunks = (cols + V - 1) / V;
  for_each_team_row<kTeam, kThreads>(rows, [&](int64_t r, bool active, int lane) {
    const T* xr = x + r * cols;
    Running run;
    for (int64_t i = lane; active && i < chunks; i += kTeam) {
      const int n = chunk_len<T>(cols - i * V);
      float v[V];
      load_f32(xr + i * V, n, v);
      Running chunk;
#pragma unroll
      for (int k = 0; k < V; ++k)
        if (k < n) chunk.max = fmaxf(chunk.max, v[k]);
#pragma unroll
      for (int k = 0; k < V; ++k)
        if (k < n) chunk.sum += rescale(v[k], chunk.max);
      run.merge(chunk);
    }
    run = team_merge<kTeam>(run, shared);
    const float inv = 1.0f / run.sum;
    for (int64_t i = lane; active && i < chunks; i += kTeam) {
      const int n = chunk_len<T>(cols - i * V);
      float v[V];
      load_f32(xr + i * V, n, v);
#pragma unroll
      for (int k = 0; k < V; ++k) v[k] = expf(v[k] - run.max) * inv;
      store_f32(y + r * cols + i * V, n, v);
    }
  });
}

}  // namespace

template <class T>
void softmax(const T* x, T* y, int64_t rows, int64_t cols, cudaStream_t stream) {
  check_sizes("softmax", {rows, cols});
  if (rows == 0 || cols == 0) return;
  // A warp per row while a row is a few vectors per lane; longer rows take a whole block.
  if (cols <= 32 * 4 * kVec<T>) {
    softmax_kernel<T, 32><<<grid_for(rows, kThreads / 32), kThreads, 0, stream>>>(x, y, rows, cols);
  } else {
    softmax_kernel<T, kThreads><<<grid_for(rows, 1), kThreads, 0, stream>>>(x, y, rows, cols);
  }
  check_launch("softmax");
}

template void softmax<float>(const float*, float*, int64_t, int64_t, cudaStream_t);
template void softmax<__half>(const __half*, __half*, int64_t, int64_t, cudaStream_t);
template void softmax<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, int64_t, int64_t,
                                     cudaStream_t);

}  // namespace ebb::cuda
