#pragma once
// A device-side scan for non-finite values (NaN, ±infinity): a pipeline checks a stage's output
// with it and reads back one flag instead of the tensor. f32, f16 or bf16 storage, dense.
// ebb::Error for a bad size or a failed launch.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ebb::cuda {

// Sets *flag (device memory) to 1 when any of x[0..n) is NaN or infinite; leaves it otherwise,
// so the caller zeroes it first.
template <class T>
void flag_nonfinite(const T* x, int64_t n, unsigned* flag, cudaStream_t stream);

}  // namespace ebb::cuda
