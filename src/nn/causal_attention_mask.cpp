#include "nn/causal_attention_mask.h"

#include <limits>
#include <vector>

#include "core/error.h"

namespace ebb {

Tensor causal_attention_mask(Backend& backend, int64_t length) {
  if (length <= 0) fail("causal attention mask: length {} is not positive", length);
  const auto n = static_cast<size_t>(length);
  std::vector<float> mask(n * n, 0.0f);
  for (size_t query = 0; query < n; ++query)
    for (size_t key = query + 1; key < n; ++key)
      mask[query * n + key] = -std::numeric_limits<float>::infinity();
  return backend.from_floats({length, length}, mask, "causal attention mask");
}

}  // namespace ebb
