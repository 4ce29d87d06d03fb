#pragma once
// Normalisations on the GPU, the twins of the CPU backend's (backend/cpu/norms.cpp): biased
// variance, eps added to it, y = (x - mean) · rstd · gamma + beta. Storage is f32, f16 or bf16;
// statistics and arithmetic are f32 (the CPU's are double, so f32 results agree to ~1e-6
// relative). gamma and beta are optional (nullptr) and of x's type. All pointers are device
// memory, dense; out may be x itself. Launch failures raise ebb::Error; errors during
// execution surface at the next synchronisation.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ebb::cuda {

// x [n, c, s] (NCHW with the spatial dimensions flattened), normalised over each of `groups`
// groups of c / groups channels.
template <class T>
void group_norm(const T* x, const T* gamma, const T* beta, T* out, int64_t n, int64_t c, int64_t s,
                int64_t groups, float eps, cudaStream_t stream);

// The same on channels-last x [n, s, c].
template <class T>
void group_norm_channels_last(const T* x, const T* gamma, const T* beta, T* out, int64_t n,
                              int64_t c, int64_t s, int64_t groups, float eps, cudaStream_t stream);

// Over each row of x [rows, d]; gamma and beta [d].
template <class T>
void layer_norm(const T* x, const T* gamma, const T* beta, T* out, int64_t rows, int64_t d,
                float eps, cudaStream_t stream);

// y = x / sqrt(mean(x²) + eps) · gamma over each row of x [rows, d].
template <class T>
void rms_norm(const T* x, const T* gamma, T* out, int64_t rows, int64_t d, float eps,
              cudaStream_t stream);

}  // namespace ebb::cuda
