#pragma once
// The part every checkpoint writer shares: a tensor described by a fill callback instead of a
// buffer, and the loop that asks the callbacks for their bytes chunk by chunk, in parallel,
// and writes them into place. A multi-gigabyte checkpoint never sits in memory.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "tensor/dtype.h"

namespace ebb {

struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost dimension first
  // Writes the tensor's bytes [byte_offset_in_tensor, byte_offset_in_tensor + dst.size()) to
  // dst. Called once per chunk, possibly from several threads at once (for distinct chunks);
  // a chunk always starts and ends on a whole element (a whole block for quantized types).
  std::function<void(std::span<std::byte> dst, uint64_t byte_offset_in_tensor)> fill;
};

// The largest piece of a tensor one fill call produces.
inline constexpr uint64_t kFillChunkBytes = uint64_t{16} << 20;

// Bytes of the tensor's data. Fails, naming the tensor, on a negative dimension, an overflowing
// size or an element count that is not a whole number of blocks.
uint64_t tensor_nbytes(const TensorToWrite& tensor);

struct TensorPlacement {
  uint64_t offset = 0;  // from the start of the data section
  uint64_t nbytes = 0;
};

// Appends a data section of `data_bytes` bytes to `file` and fills tensor i at
// `placements[i].offset` within it. Bytes no tensor covers (alignment padding) are zero.
void write_tensor_data(AtomicFile& file, const std::vector<TensorToWrite>& tensors,
                       const std::vector<TensorPlacement>& placements, uint64_t data_bytes);

}  // namespace ebb
