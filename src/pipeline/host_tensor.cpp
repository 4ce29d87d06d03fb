#include "pipeline/host_tensor.h"

namespace ebb {

Tensor tensor_from_host(Backend& backend, const Shape& shape, std::span<const float> values) {
  Tensor t = backend.empty(shape);
  backend.write(t, values.data(), values.size_bytes());
  return t;
}

std::vector<float> host_values(Backend& backend, const Tensor& t) {
  const Tensor dense = backend.contiguous(t);
  std::vector<float> out(static_cast<size_t>(dense.numel()));
  backend.read(dense, out.data(), out.size() * sizeof(float));
  return out;
}

}  // namespace ebb
