#include "nn/token_embedding.h"

#include <vector>

#include "core/error.h"
#include "tensor/dequantize.h"

namespace ebb {

Tensor gather_embedding_rows(Backend& backend, const Tensor& table, std::span<const int32_t> ids) {
  if (table.rank() != 2 || !table.is_contiguous() || table.device().kind != DeviceKind::Cpu)
    fail("embedding lookup: the table {} must be a dense 2-D host tensor", table.describe());
  const int64_t vocab = table.dim(0), width = table.dim(1);
  const uint64_t row_bytes = dense_bytes(table.dtype(), {width}, "embedding lookup");
  std::vector<float> rows(ids.size() * static_cast<size_t>(width));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab)
      fail("embedding lookup: token id {} at position {} is outside the table {}", ids[i], i,
           table.describe());
    dequantize_to_f32(table.dtype(), table.bytes() + static_cast<uint64_t>(ids[i]) * row_bytes,
                      rows.data() + i * static_cast<size_t>(width), static_cast<uint64_t>(width));
  }
  return backend.from_floats({static_cast<int64_t>(ids.size()), width}, rows, "embedding lookup");
}

}  // namespace ebb
