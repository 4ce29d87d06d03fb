#pragma once
// Writes a .safetensors file: an 8-byte little-endian header length, a JSON header padded with
// spaces to a multiple of 8 bytes, then every tensor's data in the order given.
#include <string>
#include <utility>
#include <vector>

#include "io/tensor_data_writer.h"

namespace ebb {

// Fails (and leaves no file) on duplicate or empty names, a dtype safetensors cannot hold,
// an existing `path` without `overwrite`, or any I/O error. `metadata` becomes the header's
// "__metadata__" object (omitted when empty).
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata,
                       bool overwrite);

}  // namespace ebb
