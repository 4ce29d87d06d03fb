#pragma once
// Sinusoidal timestep embedding on the GPU, the twin of
// backend/cpu/kernels/timestep_embedding.h: the same parameters and the same f32 rounding
// steps, with sin and cos in double; out is f32, f16 or bf16.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cpu/kernels/timestep_embedding.h"

namespace ebb::cuda {

// timesteps [n] (device, f32) -> out [n, dim] (device). ebb::Error when dim < 2, the
// frequency denominator is not positive, or the launch fails.
template <class T>
void timestep_embedding(const float* timesteps, int64_t n, int64_t dim,
                        const cpu::TimestepEmbeddingParams& params, T* out, cudaStream_t stream);

}  // namespace ebb::cuda
