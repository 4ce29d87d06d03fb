#pragma once
// Small hand-made tensors for format and index tests: F32 data whose every element encodes
// its position, so any byte-range mix-up shows.
#include <cstring>
#include <string>
#include <vector>

#include "io/safetensors_writer.h"

namespace ebb::test {

inline TensorToWrite f32_tensor(std::string name, std::vector<int64_t> shape, float base = 0) {
  TensorToWrite t;
  t.name = std::move(name);
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.fill = [base](std::span<std::byte> dst, uint64_t offset) {
    for (size_t i = 0; i < dst.size() / 4; ++i) {
      float v = base + static_cast<float>(offset / 4 + i);
      std::memcpy(dst.data() + 4 * i, &v, 4);
    }
  };
  return t;
}

}  // namespace ebb::test
