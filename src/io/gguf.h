#pragma once
// Reader for GGUF v2/v3 headers: metadata key/values and tensor descriptions. Only the bytes
// before the aligned data section are read, so opening a mapped file never pages in tensor data.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf_value.h"
#include "io/tensor_info.h"

namespace ebb {

struct GgufFile {
  uint32_t version = 0;
  GgufMetadata metadata;     // in file order
  uint64_t alignment = 32;   // `general.alignment`, or GGUF's default
  uint64_t data_offset = 0;  // absolute offset of the data section
  // In file order; shapes outermost first (GGUF's ne[] reversed), offsets absolute.
  std::vector<TensorInfo> tensors;

  // The value stored under `key`, or nullptr.
  const GgufValue* find(std::string_view key) const;
};

// `file` is the whole file (usually memory-mapped); `file_name` only labels error messages.
// Throws ebb::Error naming the file, the tensor or key, and the byte offset of any problem.
GgufFile parse_gguf(std::span<const std::byte> file, const std::string& file_name);

}  // namespace ebb
