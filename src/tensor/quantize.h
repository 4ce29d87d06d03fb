#pragma once
// Encoding f32 values into GGUF blocks, for tools that write quantized files (ebb-synth) and
// tests that need quantized weights of known float values. dequantize_to_f32 inverts the
// layouts. Q8_0 follows ggml's reference quantizer (quantize_row_q8_0_ref) exactly; Q4_K uses a
// plain min/max fit per group rather than ggml's iterative search, so its blocks are valid but
// not the bytes llama.cpp's tools would write.
#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace ebb {

// Whether quantize_from_f32 can encode `t`.
bool can_quantize(DType t);

// Encodes `elems` values at `src` as blocks of `t` at `dst`. `elems` must be a whole number of
// blocks and `t` one can_quantize accepts, else ebb::Error. Values must be finite.
void quantize_from_f32(DType t, const float* src, std::byte* dst, uint64_t elems);

}  // namespace ebb
