#include <cuda_runtime.h>

#include "backend/cuda/kernels/grid_stride.cuh"
#include "backend/cuda/kernels/launch.h"
#include "backend/cuda/kernels/layout.h"
#include "backend/cuda/kernels/numeric.cuh"
#include "backend/cuda/kernels/strided_index.cuh"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;

// Elements of each size as unsigned words, so copies never interpret them.
template <size_t kBytes>
struct Word;
template <>
struct Word<1> {
  using type = uint8_t;
};
template <>
struct Word<2> {
  using type = uint16_t;
};
template <>
struct Word<4> {
  using type = uint32_t;
};
template <>
struct Word<8> {
  using type = uint64_t;
};

// n <= kVec<E> elements from `src` (stride ss) to `dst` (stride ds): 16-byte moves where both
// sides are contiguous and aligned.
template <class E>
__device__ __forceinline__ void move_chunk(const E* src, int64_t ss, E* dst, int64_t ds, int n) {
  constexpr int V = kVec<E>;
  if (n == V && ss == 1 && ds == 1 && aligned16(src) && aligned16(dst)) {
    *reinterpret_cast<Vec<E>*>(dst) = *reinterpret_cast<const Vec<E>*>(src);
    return;
  }
  E v[V];
#pragma unroll
  for (int i = 0; i < V; ++i)
    if (i < n) v[i] = src[i * ss];
#pragma unroll
  for (int i = 0; i < V; ++i)
    if (i < n) dst[i * ds] = v[i];
}

// Operands of the shape: 0 dst, 1 src.
template <class E>
__global__ void __launch_bounds__(kThreads)
    copy_kernel(const E* __restrict__ src, E* __restrict__ dst, StridedShape<2> s, int64_t rows) {
  constexpr int V = kVec<E>;
  const int inner = s.rank - 1;
  const int64_t len = s.size[inner];
  const int64_t ds = s.stride[0][inner], ss = s.stride[1][inner];
  const int64_t chunks_per_row = (len + V - 1) / V;
  for_each_index(rows * chunks_per_row, [&](int64_t i) {
    int64_t row, col;
    divmod(i, chunks_per_row, row, col);
    col *= V;
    int64_t off[2];
    row_offsets(s, row, off);
    move_chunk(src + off[1] + col * ss, ss, dst + off[0] + col * ds, ds, chunk_len<E>(len - col));
  });
}

template <size_t kBytes>
void launch_copy(const void* src, void* dst, const StridedShape<2>& s, cudaStream_t stream) {
  using E = typename Word<kBytes>::type;
  const int64_t len = s.size[s.rank - 1];
  const int64_t rows = s.elements() / len;
  copy_kernel<E>
      <<<grid_for(rows * ((len + kVec<E> - 1) / kVec<E>), kThreads), kThreads, 0, stream>>>(
          static_cast<const E*>(src), static_cast<E*>(dst), s, rows);
}

// Eight elements a thread: 16 or 32 bytes each side.
constexpr int kConvertRun = 8;

template <class From, class To>
__global__ void __launch_bounds__(kThreads)
    convert_kernel(const From* __restrict__ src, To* __restrict__ dst, int64_t n) {
  const int64_t runs = (n + kConvertRun - 1) / kConvertRun;
  for_each_index(runs, [&](int64_t i) {
    const int64_t at = i * kConvertRun;
    float v[kConvertRun];
#pragma unroll
    for (int k = 0; k < kConvertRun; k += kVec<From>) {
      const int64_t left = n - at - k;
      if (left > 0) load_f32(src + at + k, chunk_len<From>(left), v + k);
    }
#pragma unroll
    for (int k = 0; k < kConvertRun; k += kVec<To>) {
      const int64_t left = n - at - k;
      if (left > 0) store_f32(dst + at + k, chunk_len<To>(left), v + k);
    }
  });
}

// Two copies of an element, written as one store.
template <class E>
struct alignas(2 * sizeof(E)) Pair {
  E first, second;
};

// One thread per input element: a pair of outputs in each of two rows.
template <class E>
__global__ void __launch_bounds__(kThreads)
    upsample_kernel(const E* __restrict__ x, Pair<E>* __restrict__ out, int64_t rows, int64_t w) {
  for_each_index(rows * w, [&](int64_t i) {
    const int64_t r = i / w, col = i % w;
    const Pair<E> v{x[i], x[i]};
    // An output row of 2w elements is w pairs.
    out[2 * r * w + col] = v;
    out[(2 * r + 1) * w + col] = v;
  });
}

template <size_t kBytes>
void launch_upsample(const void* x, void* out, int64_t rows, int64_t w, cudaStream_t stream) {
  using E = typename Word<kBytes>::type;
  upsample_kernel<E><<<grid_for(rows * w, kThreads), kThreads, 0, stream>>>(
      static_cast<const E*>(x), static_cast<Pair<E>*>(out), rows, w);
}

}  // namespace

void strided_copy(const void* src, const int64_t* src_strides, void* dst,
                  const int64_t* dst_strides, const int64_t* sizes, int rank, size_t element_bytes,
                  cudaStream_t stream) {
  if (rank < 0) fail("strided_copy: negative rank {}", rank);
  const StridedShape<2> s =
      with_inner_dim(collapse_dims<2>("strided_copy", sizes, {dst_strides, src_strides}, rank));
  if (element_bytes != 1 && element_bytes != 2 && element_bytes != 4 && element_bytes != 8)
    fail("strided_copy: elements of {} bytes are not supported (1, 2, 4 or 8)", element_bytes);
  if (s.elements() == 0) return;
  switch (element_bytes) {
    case 1:
      launch_copy<1>(src, dst, s, stream);
      break;
    case 2:
      launch_copy<2>(src, dst, s, stream);
      break;
    case 4:
      launch_copy<4>(src, dst, s, stream);
      break;
    default:
      launch_copy<8>(src, dst, s, stream);
      break;
  }
  check_launch("strided_copy");
}

template <class From, class To>
void convert(const From* src, To* dst, int64_t n, cudaStream_t stream) {
  check_sizes("convert", {n});
  if (n == 0) return;
  convert_kernel<From, To>
      <<<grid_for((n + kConvertRun - 1) / kConvertRun, kThreads), kThreads, 0, stream>>>(src, dst,
                                                                                         n);
  check_launch("convert");
}

void upsample_nearest2x(const void* x, void* out, int64_t n, int64_t c, int64_t h, int64_t w,
                        size_t element_bytes, cudaStream_t stream) {
  check_sizes("upsample_nearest2x", {n, c, h, w});
  const int64_t rows = n * c * h;
  if (rows == 0 || w == 0) return;
  if (element_bytes != 1 && element_bytes != 2 && element_bytes != 4 && element_bytes != 8)
    fail("upsample_nearest2x: elements of {} bytes are not supported (1, 2, 4 or 8)",
         element_bytes);
  if (reinterpret_cast<uintptr_t>(out) % (2 * element_bytes) != 0)
    fail("upsample_nearest2x: output {} is not aligned to {} bytes", out, 2 * element_bytes);
  switch (element_bytes) {
    case 1:
      launch_upsample<1>(x, out, rows, w, stream);
      break;
    case 2:
      launch_upsample<2>(x, out, rows, w, stream);
      break;
    case 4:
      launch_upsample<4>(x, out, rows, w, stream);
      break;
    default:
      launch_upsample<8>(x, out, rows, w, stream);
      break;
  }
  check_launch("upsample_nearest2x");
}

#define EBB_INSTANTIATE(From, To) \
  template void convert<From, To>(const From*, To*, int64_t, cudaStream_t);
EBB_INSTANTIATE(float, __half)
EBB_INSTANTIATE(float, __nv_bfloat16)
EBB_INSTANTIATE(__half, float)
EBB_INSTANTIATE(__nv_bfloat16, float)
EBB_INSTANTIATE(__half, __nv_bfloat16)
EBB_INSTANTIATE(__nv_bfloat16, __half)
#undef EBB_INSTANTIATE

}  // namespace ebb::cuda
