#pragma once
// 3x3 convolution with stride 1 and padding 1 as an implicit GEMM on the tensor cores (NCHW,
// f16 or bf16, f32 accumulation, bias added in the epilogue), without im2col's 9x patch matrix.
//
// With k = c·9 + ky·3 + kx (the OIHW weight as stored is the [O, 9·C] A operand),
// out[n, o, p] = bias[o] + Σ_k w[o, k] · B[k, p], B[k, p] = x[n, c, oy + ky - 1, ox + kx - 1].
// Three zero-padded copies of the input, copy kx shifted by kx - 1 along x and row y holding
// input row y - 1, turn every row of B into a contiguous run of the copy:
// B[k, p] = shifted[n, kx, c, p + ky·W]. With W % 8 == 0 every 8 pixels are one 16-byte load.
// Images larger than the scratch bound run in bands of output rows.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "tensor/dtype.h"

namespace ebb::cuda {

struct Conv3x3Shape {
  int64_t batch = 0, channels = 0, height = 0, width = 0, outputs = 0;
};

// Whether the kernel covers the shape: channels % 32 == 0 (a k-tile is 32 rows of the weight),
// width % 8 == 0 and 32-bit indices. Other shapes run as im2col + GEMM.
bool conv3x3_applies(const Conv3x3Shape& s);

// Whether the kernel is the faster path, a fixed rule from measurements on the H100
// (docs/benchmarks.md): at most 256 output channels (cuBLASLt's GEMM is slow with so few
// columns), at most 64 pixels (the kernel splits the reduction to fill the SMs), or 320 output
// channels from 128x128 pixels on (the kernel's widest tiles reuse the most there). Elsewhere
// the mma.sync kernel reaches 150-300 TFLOP/s while im2col + cuBLASLt's wgmma GEMM reaches
// 250-490, the gathering included.
bool conv3x3_beats_im2col(const Conv3x3Shape& s);

// How one convolution runs, a function of the shape and the bound alone (never timed), so the
// results are the same run to run.
struct Conv3x3Plan {
  int tiling = 0;              // index of the tile shape
  int splits = 1;              // the reduction split across blocks, summed in a fixed order
  int64_t band_rows = 0;       // output rows per band; 0: one band's copies exceed the bound
  int64_t shifted_elems = 0;   // scratch for the shifted copies of one band
  int64_t partial_floats = 0;  // f32 scratch for the split's partial sums (0 without a split)
};

// `tiling` in [0, conv3x3_tilings()) forces a tile shape (benchmarks, tests; band_rows 0 where
// it does not divide the weight's columns); -1 picks one by the shape.
Conv3x3Plan conv3x3_plan(const Conv3x3Shape& s, uint64_t element_bytes, uint64_t max_scratch_bytes,
                         int tiling = -1);
int conv3x3_tilings();

struct Conv3x3Args {
  DType dtype = DType::F16;  // F16 or BF16
  Conv3x3Shape shape;
  const void* x = nullptr;     // [N, C, H, W]
  const void* w = nullptr;     // [O, C, 3, 3]
  const void* bias = nullptr;  // [O] or null
  void* out = nullptr;         // [N, O, H, W]
  void* shifted = nullptr;     // plan.shifted_elems of dtype
  float* partials = nullptr;   // plan.partial_floats
};

// Every pointer 16-byte aligned.
void conv3x3(const Conv3x3Plan& plan, const Conv3x3Args& a, cudaStream_t stream);

}  // namespace ebb::cuda
