#pragma once
// Reader for the safetensors header: an 8-byte little-endian length, a JSON object describing
// every tensor, then the raw tensor bytes. Only the header is read, so opening a mapped file
// never pages in tensor data.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "io/tensor_info.h"

namespace ebb {

struct SafetensorsHeader {
  // Sorted by data offset; tensors at the same offset (zero-sized ones) keep header order.
  std::vector<TensorInfo> tensors;
  // The `__metadata__` map, sorted by key.
  std::vector<std::pair<std::string, std::string>> metadata;
  uint64_t data_offset = 0;  // absolute offset of the data region (8 + header length)
};

// `file` is the whole file (usually memory-mapped); `file_name` only labels error messages.
// Throws ebb::Error naming the file, the tensor and the byte offset of any inconsistency.
SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& file_name);

}  // namespace ebb
