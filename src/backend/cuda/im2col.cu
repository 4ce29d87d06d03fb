#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/im2col.h"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;

// Block row y gathers patch rows y, y + gridDim.y, ...; each thread 16 bytes of consecutive
// columns, so the row's coordinates are computed once per 16 bytes, reads along a kernel row
// coalesce and writes are whole 16-byte stores when rows keep that alignment. Index math is
// 32-bit (the launcher checks the sizes).
template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, Im2colShape s, int p0, int count, int rows,
                              T* __restrict__ col) {
  constexpr int kVec = 16 / sizeof(T);
  const int first = (blockIdx.x * blockDim.x + threadIdx.x) * kVec;
  if (first >= count) return;
  const int out_w = static_cast<int>(s.out_w), height = static_cast<int>(s.height);
  const int width = static_cast<int>(s.width), kernel_w = static_cast<int>(s.kernel_w);
  const int kernel_h = static_cast<int>(s.kernel_h);
  const int oy0 = (p0 + first) / out_w, ox0 = (p0 + first) - oy0 * out_w;
  const bool whole = count % kVec == 0;
  for (int row = blockIdx.y; row < rows; row += gridDim.y) {
    const int kx = row % kernel_w, ky = row / kernel_w % kernel_h, c = row / (kernel_w * kernel_h);
    const T* plane = x + static_cast<int64_t>(c) * height * width;
    alignas(16) T v[kVec];
    int oy = oy0, ox = ox0;
    for (int j = 0; j < kVec; ++j) {
      const int iy = oy * s.stride - s.pad_top + ky, ix = ox * s.stride - s.pad_left + kx;
      const bool inside = first + j < count && iy >= 0 && iy < height && ix >= 0 && ix < width;
      v[j] = inside ? plane[iy * width + ix] : T(0.0f);
      if (++ox == out_w) {
        ox = 0;
        ++oy;
      }
    }
    T* dst = col + static_cast<int64_t>(row) * count + first;
    if (whole) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(v);
    } else {
      for (int j = 0; j < kVec && first + j < count; ++j) dst[j] = v[j];
    }
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
  if (rows > INT32_MAX || count > INT32_MAX || p0 + count > INT32_MAX ||
      s.channels * s.height * s.width > INT32_MAX)
    fail("im2col: {} patch rows of {} columns from a {}x{}x{} image are beyond 32-bit indexing",
         rows, count, s.channels, s.height, s.width);
  constexpr int64_t kVec = 16 / sizeof(T);
  const dim3 grid(blocks_for((count + kVec - 1) / kVec),
                  static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  im2col_kernel<T><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(x), s, static_cast<int>(p0),
                                                  static_cast<int>(count), static_cast<int>(rows),
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
