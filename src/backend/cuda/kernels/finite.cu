#include <cuda_runtime.h>

#include "backend/cuda/kernels/finite.h"
#include "backend/cuda/kernels/grid_stride.cuh"
#include "backend/cuda/kernels/launch.h"
#include "backend/cuda/kernels/numeric.cuh"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void __launch_bounds__(kThreads)
    nonfinite_kernel(const T* __restrict__ x, int64_t n, unsigned* flag) {
  constexpr int V = kVec<T>;
  const int64_t chunks = (n + V - 1) / V;
  bool bad = false;
  for_each_index(chunks, [&](int64_t i) {
    const int count = chunk_len<T>(n - i * V);
    float v[V];
    load_f32(x + i * V, count, v);
#pragma unroll
    for (int k = 0; k < V; ++k) bad |= k < count && !isfinite(v[k]);
  });
  // One store per warp that saw a bad value keeps the flag's cache line quiet.
  if (__any_sync(0xffffffffu, bad) && (threadIdx.x % 32) == 0) *flag = 1u;
}

}  // namespace

template <class T>
void flag_nonfinite(const T* x, int64_t n, unsigned* flag, cudaStream_t stream) {
  check_sizes("flag_nonfinite", {n});
  if (n == 0) return;
  nonfinite_kernel<T>
      <<<grid_for((n + kVec<T> - 1) / kVec<T>, kThreads), kThreads, 0, stream>>>(x, n, flag);
  check_launch("flag_nonfinite");
}

#define EBB_INSTANTIATE(T) \
  template void flag_nonfinite<T>(const T*, int64_t, unsigned*, cudaStream_t);
EBB_INSTANTIATE(float)
EBB_INSTANTIATE(__half)
EBB_INSTANTIATE(__nv_bfloat16)
#undef EBB_INSTANTIATE

}  // namespace ebb::cuda
