#pragma once
// Writes a GGUF (version 3) file: header, metadata key/value pairs, tensor infos, then each
// tensor's data at an offset that is a multiple of the alignment.
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf_value.h"
#include "io/tensor_data_writer.h"

namespace ebb {

// Tensor shapes are outermost-first (as everywhere in Ebb); the file gets ggml's innermost-first
// order. `alignment` must be a power of two and a multiple of 8; it is recorded as
// `general.alignment` when it differs from GGUF's default of 32 (metadata may carry that key
// only with the same value, as a u32). Quantized tensors need an innermost dimension that is a
// multiple of the block size. Fails (and leaves no file) on invalid input or I/O errors.
void write_gguf(const std::string& path, const std::vector<TensorToWrite>& tensors,
                const GgufMetadata& metadata, uint32_t alignment, bool overwrite);

}  // namespace ebb
