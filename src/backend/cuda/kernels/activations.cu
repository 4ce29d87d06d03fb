#include <cuda_runtime.h>

#include "backend/cuda/kernels/activations.h"
#include "backend/cuda/kernels/grid_stride.cuh"
#include "backend/cuda/kernels/launch.h"
#include "backend/cuda/kernels/numeric.cuh"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;

enum class Fn { Silu, GeluErf, GeluTanh };

// The forms of backend/cpu/kernels/pointwise_kernels_portable.cpp.
template <Fn kFn>
__device__ __forceinline__ float apply(float x) {
  if constexpr (kFn == Fn::Silu) {
    return x / (1.0f + expf(-x));
  } else if constexpr (kFn == Fn::GeluErf) {
    return 0.5f * x * erfcf(x * -0.70710678118654752f);
  } else {
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * u));
  }
}

// x and y may be the same memory.
template <class T, Fn kFn>
__global__ void __launch_bounds__(kThreads) map_kernel(const T* x, T* y, int64_t n) {
  constexpr int V = kVec<T>;
  const int64_t chunks = (n + V - 1) / V;
  for_each_index(chunks, [&](int64_t i) {
    const int count = chunk_len<T>(n - i * V);
    float v[V];
    load_f32(x + i * V, count, v);
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = apply<kFn>(v[k]);
    store_f32(y + i * V, count, v);
  });
}

template <class T, Fn kFn>
__global__ void __launch_bounds__(kThreads)
    geglu_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t cols) {
  constexpr int V = kVec<T>;
  const int64_t chunks_per_row = (cols + V - 1) / V;
  for_each_index(rows * chunks_per_row, [&](int64_t i) {
    int64_t r, c;
    divmod(i, chunks_per_row, r, c);
    c *= V;
    const int count = chunk_len<T>(cols - c);
    float hidden[V], gate[V];
    load_f32(x + r * 2 * cols + c, count, hidden);
    load_f32(x + r * 2 * cols + cols + c, count, gate);
#pragma unroll
    for (int k = 0; k < V; ++k) hidden[k] *= apply<kFn>(gate[k]);
    store_f32(y + r * cols + c, count, hidden);
  });
}

template <class T, Fn kFn>
void launch_map(const char* op, const T* x, T* y, int64_t n, cudaStream_t stream) {
  check_sizes(op, {n});
  if (n == 0) return;
  map_kernel<T, kFn>
      <<<grid_for((n + kVec<T> - 1) / kVec<T>, kThreads), kThreads, 0, stream>>>(x, y, n);
  check_launch(op);
}

template <class T, Fn kFn>
void launch_geglu(const T* x, T* y, int64_t rows, int64_t cols, cudaStream_t stream) {
  check_sizes("geglu", {rows, cols});
  if (rows == 0 || cols == 0) return;
  const int64_t chunks = rows * ((cols + kVec<T> - 1) / kVec<T>);
  geglu_kernel<T, kFn><<<grid_for(chunks, kThreads), kThreads, 0, stream>>>(x, y, rows, cols);
  check_launch("geglu");
}

}  // namespace

template <class T>
void silu(const T* x, T* y, int64_t n, cudaStream_t stream) {
  launch_map<T, Fn::Silu>("silu", x, y, n, stream);
}

template <class T>
void gelu(const T* x, T* y, int64_t n, Gelu approximation, cudaStream_t stream) {
  if (approximation == Gelu::Tanh)
    launch_map<T, Fn::GeluTanh>("gelu (tanh)", x, y, n, stream);
  else
    launch_map<T, Fn::GeluErf>("gelu", x, y, n, stream);
}

template <class T>
void geglu(const T* x, T* y, int64_t rows, int64_t cols, Gelu approximation, cudaStream_t stream) {
  if (approximation == Gelu::Tanh)
    launch_geglu<T, Fn::GeluTanh>(x, y, rows, cols, stream);
  else
    launch_geglu<T, Fn::GeluErf>(x, y, rows, cols, stream);
}

#define EBB_INSTANTIATE(T)                                          \
  template void silu<T>(const T*, T*, int64_t, cudaStream_t);       \
  template void gelu<T>(const T*, T*, int64_t, Gelu, cudaStream_t); \
  template void geglu<T>(const T*, T*, int64_t, int64_t, Gelu, cudaStream_t);
EBB_INSTANTIATE(float)
EBB_INSTANTIATE(__half)
EBB_INSTANTIATE(__nv_bfloat16)
#undef EBB_INSTANTIATE

}  // namespace ebb::cuda
