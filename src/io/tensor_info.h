#pragma once
// What a file format says about one tensor: enough to find its bytes without reading them.
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace ebb {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  // Outermost dimension first (PyTorch order). GGUF stores ne[] innermost first; its reader
  // reverses them so every format agrees.
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // absolute byte offset in its file
  uint64_t nbytes = 0;

  uint64_t elements() const {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    return n;
  }
};

}  // namespace ebb
