#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/im2col.h"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;

// One block row per patch row (channel, ky, kx), threads along the columns: the row's
// coordinates are uniform across the block and both the reads (stride 1) and the writes
// coalesce; index math stays 32-bit within a row.
template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, Im2colShape s, int64_t p0, int count,
                              int64_t rows, T* __restrict__ col) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const int p = static_cast<int>(p0) + i;
  const int oy = p / static_cast<int>(s.out_w), ox = p - oy * static_cast<int>(s.out_w);
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const int kx = static_cast<int>(row % s.kernel_w);
    const int ky = static_cast<int>(row / s.kernel_w % s.kernel_h);
    const int64_t c = row / (s.kernel_w * s.kernel_h);
    const int iy = oy * s.stride - s.pad_top + ky, ix = ox * s.stride - s.pad_left + kx;
    const bool inside = iy >= 0 && iy < s.height && ix >= 0 && ix < s.width;
    col[row * count + i] = inside ? x[(c * s.height + iy) * s.width + ix] : T(0.0f);
  }
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
  const int64_t rows = s.channels * s.kernel_h * s.kernel_w;
  if (rows == 0 || count == 0) return;
  if (count > INT32_MAX || s.out_h * s.out_w > INT32_MAX)
    fail("im2col: {} columns of a {}x{} output are more than 32-bit indexing covers", count,
         s.out_h, s.out_w);
  const dim3 grid(blocks_for(count), static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  im2col_kernel<T><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(x), s, p0,
                                                   static_cast<int>(count), rows,
                                                   static_cast<T*>(col));
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
