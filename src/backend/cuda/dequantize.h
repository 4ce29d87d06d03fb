#pragma once
// GPU decoding of GGUF block-quantized tensors to f32, f16 or bf16. Results are bit-identical
// to the CPU path: f32 output equals dequantize_to_f32 (tensor/dequantize.h), f16 and bf16
// outputs equal f32_to_f16 / f32_to_bf16 of it (tensor/float_convert.h). The one exception is
// NaN, which only blocks with non-finite scales produce: it stays NaN, but its payload is the
// GPU's canonical one, not the one x86 propagates.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "tensor/dtype.h"

namespace ebb {

// True for the block-quantized types (Q4_0 .. IQ4_XS, Q8_K) that cuda_dequantize decodes.
bool cuda_can_dequantize(DType t);

// Enqueues on `stream` the decoding of `elems` values of block type `t` at `src` into `dst` as
// `out` (F32, F16 or BF16). Both pointers are device memory; `src` needs no alignment, `dst`
// must be 16-byte aligned (any whole block of an aligned buffer is). A tensor may be decoded in
// one call or in block ranges with the same result. ebb::Error, before anything is enqueued,
// for an unsupported type pair, `elems` not a whole number of blocks, or a misaligned `dst`;
// also when the launch fails. Errors during execution surface at the next synchronization.
void cuda_dequantize(DType t, const void* src, void* dst, DType out, uint64_t elems,
                     cudaStream_t stream);

}  // namespace ebb
