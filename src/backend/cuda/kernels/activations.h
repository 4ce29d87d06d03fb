#pragma once
// Elementwise activations on the GPU, the twins of backend/cpu/kernels/activations.h, with
// the same formulas (GELU through erfc and a sigmoid, free of cancellation for negative
// inputs): f32, f16 or bf16 storage, f32 math with the accurate expf/erfcf, one rounding of
// the result. Pointers are device memory, dense; y may be x itself. ebb::Error for a bad size
// or a failed launch.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ebb::cuda {

// torch.nn.functional.gelu's `approximate`, as cpu::GeluApproximation.
enum class Gelu { Erf, Tanh };

// y = x · sigmoid(x)
template <class T>
void silu(const T* x, T* y, int64_t n, cudaStream_t stream);

template <class T>
void gelu(const T* x, T* y, int64_t n, Gelu approximation, cudaStream_t stream);

// x [rows, 2·cols] (hidden, then gate) -> y [rows, cols] = hidden · gelu(gate), as diffusers'
// GEGLU. y must not overlap x.
template <class T>
void geglu(const T* x, T* y, int64_t rows, int64_t cols, Gelu approximation, cudaStream_t stream);

}  // namespace ebb::cuda
