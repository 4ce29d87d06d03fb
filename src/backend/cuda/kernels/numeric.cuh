#pragma once
// Device helpers shared by the kernels: f32 math on f32/f16/bf16 storage, vector loads and
// stores of 16 bytes, and warp/block reductions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace ebb::cuda {

__device__ __forceinline__ float to_f32(float v) {
  return v;
}
__device__ __forceinline__ float to_f32(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <class T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Elements of T in 16 bytes.
template <class T>
constexpr int kVec = 16 / sizeof(T);

template <class T>
struct alignas(16) Vec {
  T v[kVec<T>];
};

// How many of the `remaining` elements the next chunk of kVec<T> holds.
template <class T>
__device__ __forceinline__ int chunk_len(int64_t remaining) {
  return remaining < kVec<T> ? static_cast<int>(remaining) : kVec<T>;
}

// q = n / d, r = n % d for n >= 0, d > 0: in 32 bits when both fit, since 64-bit division
// costs several times as many instructions and the index kernels divide once per chunk.
__device__ __forceinline__ void divmod(int64_t n, int64_t d, int64_t& q, int64_t& r) {
  if (((n | d) >> 31) == 0) {
    const uint32_t n32 = static_cast<uint32_t>(n), d32 = static_cast<uint32_t>(d);
    q = n32 / d32;
    r = n32 - static_cast<uint32_t>(q) * d32;
  } else {
    q = n / d;
    r = n - q * d;
  }
}

__device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

// Reads n <= kVec<T> elements at p as f32: one 16-byte load when all kVec are wanted and p is
// aligned, element loads otherwise.
template <class T>
__device__ __forceinline__ void load_f32(const T* p, int n, float* out) {
  if (n == kVec<T> && aligned16(p)) {
    const Vec<T> v = *reinterpret_cast<const Vec<T>*>(p);
#pragma unroll
    for (int i = 0; i < kVec<T>; ++i) out[i] = to_f32(v.v[i]);
  } else {
#pragma unroll
    for (int i = 0; i < kVec<T>; ++i)
      if (i < n) out[i] = to_f32(p[i]);
  }
}

template <class T>
__device__ __forceinline__ void store_f32(T* p, int n, const float* in) {
  if (n == kVec<T> && aligned16(p)) {
    Vec<T> v;
#pragma unroll
    for (int i = 0; i < kVec<T>; ++i) v.v[i] = from_f32<T>(in[i]);
    *reinterpret_cast<Vec<T>*>(p) = v;
  } else {
#pragma unroll
    for (int i = 0; i < kVec<T>; ++i)
      if (i < n) p[i] = from_f32<T>(in[i]);
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Hands rows to teams of kTeam threads (a warp, or the whole block of kThreads), calling
// body(row, active, lane) round after round. Every thread of a block runs the same rounds, so
// a body may synchronise the block; `active` is false for teams past the last row, whose row
// must not be touched.
template <int kTeam, int kThreads, class Body>
__device__ __forceinline__ void for_each_team_row(int64_t rows, Body body) {
  constexpr int kTeamsPerBlock = kThreads / kTeam;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kTeamsPerBlock; first < rows;
       first += static_cast<int64_t>(gridDim.x) * kTeamsPerBlock) {
    const int64_t row = first + threadIdx.x / kTeam;
    body(row, row < rows, static_cast<int>(threadIdx.x % kTeam));
  }
}

// Sum over the block, returned to every thread. `shared` holds 32 floats; the block is a
// multiple of 32 threads. Synchronises, so every thread of the block must call it.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : 0.0f;
  return warp_sum(v);
}

}  // namespace ebb::cuda
