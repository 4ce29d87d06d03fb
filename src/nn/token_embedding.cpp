#include "nn/token_embedding.h"

#include <vector>

#include "core/error.h"
#include "tensor/dequantize.h"

namespace ebb {

Tensor gather_embedding_rows(Backend& backend, const Tensor& table, std::span<const int32_t> ids) {
  if (table.rank() != 2 || !table.is_contiguous())
    fail("embedding lookup: the table {} must be a dense 2-D tensor", table.describe());
  const int64_t vocab = table.dim(0), width = table.dim(1);
  const uint64_t row_bytes = dense_bytes(table.dtype(), {width}, "embedding lookup");
  const bool on_host = table.device().kind == DeviceKind::Cpu;
  // A table a plan put on a device is read back one row per token: a few KiB per prompt.
  std::vector<std::byte> fetched(on_host ? 0 : row_bytes);
  std::vector<float> rows(ids.size() * static_cast<size_t>(width));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab)
      fail("embedding lookup: token id {} at position {} is outside the table {}", ids[i], i,
           table.describe());
    const std::byte* row = table.bytes() + static_cast<uint64_t>(ids[i]) * row_bytes;
    if (!on_host) {
      backend.read(table.narrow(0, ids[i], 1), fetched.data(), row_bytes);
      row = fetched.data();
    }
    dequantize_to_f32(table.dtype(), row, rows.data() + i * static_cast<size_t>(width),
                      static_cast<uint64_t>(width));
  }
  return backend.from_floats({static_cast<int64_t>(ids.size()), width}, rows, "embedding lookup");
}

}  // namespace ebb
