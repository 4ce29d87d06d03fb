#pragma once
// Data movement on the GPU: strided copies (contiguous, permute, concat and split are all
// one), dtype conversion between f32, f16 and bf16, and 2x nearest upsampling. Copies move
// elements of 1, 2, 4 or 8 bytes without looking at them. Pointers are device memory.
// ebb::Error for a bad shape, an unsupported element size or a failed launch.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace ebb::cuda {

// dst[i] = src[i] over `sizes` (rank <= 6 once contiguous dimensions merge; outermost
// first), each side through its own element strides. dst must not overlap src, and its
// strides must not make two elements share memory.
void strided_copy(const void* src, const int64_t* src_strides, void* dst,
                  const int64_t* dst_strides, const int64_t* sizes, int rank, size_t element_bytes,
                  cudaStream_t stream);

// n dense elements from one of float, __half, __nv_bfloat16 to another, rounded to nearest
// even (as tensor/float_convert.h does on the host).
template <class From, class To>
void convert(const From* src, To* dst, int64_t n, cudaStream_t stream);

// x [n, c, h, w] dense -> out [n, c, 2h, 2w], each pixel repeated 2x2. out must be aligned
// to twice the element size (pairs of outputs are written at once).
void upsample_nearest2x(const void* x, void* out, int64_t n, int64_t c, int64_t h, int64_t w,
                        size_t element_bytes, cudaStream_t stream);

}  // namespace ebb::cuda
