#pragma once
// Decoding of tensor data of any DType to f32. Block types give results bit-identical to
// gguf-py's reference dequantizers (gguf.quants.dequantize): the same f32 operations in the
// same order. Plain types convert each element exactly where f32 can hold it and round to
// nearest even otherwise (F64, large integers).
#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace ebb {

// Decodes `elems` values of type `t` at `src` into `dst`. `elems` must be a whole number of
// blocks of `t`, else ebb::Error. `src` needs no particular alignment. Never allocates; a
// tensor may be decoded in one call or in pieces (rows, block ranges) with the same result.
void dequantize_to_f32(DType t, const std::byte* src, float* dst, uint64_t elems);

}  // namespace ebb
