#pragma once
// Softmax over the last dimension on the GPU, the twin of backend/cpu/kernels/softmax.h:
// y = exp(x - max) / Σ exp(x - max) per row, with the maximum and the sum in f32 (one pass
// for both, rescaling the running sum when the maximum grows), f32, f16 or bf16 storage. A row
// of all -inf gives NaN, as torch does. Rows may be of any length.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ebb::cuda {

// x and y [rows, cols], dense device memory; y may be x itself. ebb::Error for a bad shape
// or a failed launch.
template <class T>
void softmax(const T* x, T* y, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace ebb::cuda
