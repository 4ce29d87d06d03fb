#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/im2col.h"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per element of col, columns fastest so that writes coalesce.
template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, Im2colShape s, int64_t p0, int64_t count,
                              int64_t total, T* __restrict__ col) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int64_t row = i / count, p = p0 + i % count;
  const int64_t kx = row % s.kernel_w, ky = row / s.kernel_w % s.kernel_h;
  const int64_t c = row / (s.kernel_w * s.kernel_h);
  const int64_t oy = p / s.out_w, ox = p % s.out_w;
  const int64_t iy = oy * s.stride - s.pad_top + ky, ix = ox * s.stride - s.pad_left + kx;
  const bool inside = iy >= 0 && iy < s.height && ix >= 0 && ix < s.width;
  col[i] = inside ? x[(c * s.height + iy) * s.width + ix] : T(0.0f);
}

template <typename T>
__global__ void broadcast_rows_kernel(const T* __restrict__ values, T* __restrict__ out,
                                      int64_t cols, int64_t total) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) out[i] = values[i / cols];
}

unsigned blocks_for(int64_t total) {
  return static_cast<unsigned>((total + kThreads - 1) / kThreads);
}

template <typename T>
void launch_im2col(const void* x, const Im2colShape& s, int64_t p0, int64_t count, void* col,
                   cudaStream_t stream) {
  const int64_t total = s.channels * s.kernel_h * s.kernel_w * count;
  if (total == 0) return;
  im2col_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(static_cast<const T*>(x), s, p0,
                                                                count, total, static_cast<T*>(col));
  check_launch("im2col");
}

template <typename T>
void launch_broadcast_rows(const void* values, void* out, int64_t rows, int64_t cols,
                           cudaStream_t stream) {
  const int64_t total = rows * cols;
  if (total == 0) return;
  broadcast_rows_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      static_cast<const T*>(values), static_cast<T*>(out), cols, total);
  check_launch("broadcast_rows");
}

}  // namespace

void im2col(DType t, const void* x, const Im2colShape& s, int64_t p0, int64_t count, void* col,
            cudaStream_t stream) {
  switch (t) {
    case DType::F32:
      return launch_im2col<float>(x, s, p0, count, col, stream);
    case DType::F16:
      return launch_im2col<__half>(x, s, p0, count, col, stream);
    case DType::BF16:
      return launch_im2col<__nv_bfloat16>(x, s, p0, count, col, stream);
    default:
      fail("im2col: {} is not F32, F16 or BF16", dtype_name(t));
  }
}

void broadcast_rows(DType t, const void* values, void* out, int64_t rows, int64_t cols,
                    cudaStream_t stream) {
  switch (t) {
    case DType::F32:
      return launch_broadcast_rows<float>(values, out, rows, cols, stream);
    case DType::F16:
      return launch_broadcast_rows<__half>(values, out, rows, cols, stream);
    case DType::BF16:
      return launch_broadcast_rows<__nv_bfloat16>(values, out, rows, cols, stream);
    default:
      fail("broadcast_rows: {} is not F32, F16 or BF16", dtype_name(t));
  }
}

}  // namespace ebb::cuda
