#pragma once
// The gathering half of conv2d as im2col + GEMM: for one image x [C, H, W], the columns
// [p0, p0 + count) of the patch matrix col [C·kh·kw, count], column p being output pixel
// (p / Wo, p % Wo) and zero where the kernel reaches into the padding. Chunks of columns keep
// the scratch bounded at large images.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "tensor/dtype.h"

namespace ebb::cuda {

struct Im2colShape {
  int64_t channels = 0, height = 0, width = 0;  // input image
  int64_t kernel_h = 0, kernel_w = 0;
  int64_t out_h = 0, out_w = 0;
  int stride = 1, pad_top = 0, pad_left = 0;
};

// x and col of dtype `t` (F32, F16 or BF16).
void im2col(DType t, const void* x, const Im2colShape& s, int64_t p0, int64_t count, void* col,
            cudaStream_t stream);

// out [rows, cols] with out[r, c] = values[r]: a bias laid out for a GEMM to accumulate onto.
void broadcast_rows(DType t, const void* values, void* out, int64_t rows, int64_t cols,
                    cudaStream_t stream);

}  // namespace ebb::cuda
