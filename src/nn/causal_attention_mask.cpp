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
  Tensor out =
      backend.empty({length, length}, DType::F32, MemoryTag::Activations, "causal attention mask");
  backend.write(out, mask.data(), mask.size() * sizeof(float));
  return out;
}

}  // namespace ebb
