#include "nn/weight_shape_check.h"

#include "core/error.h"

namespace ebb {

Tensor get_with_shape(const LeasedWeights& weights, std::string_view name, const Shape& expected) {
  Tensor w = weights.get(name);
  if (w.shape() != expected) {
    fail("weight {}{} has shape {}, but the model config expects {}", weights.prefix(), name,
         shape_str(w.shape()), shape_str(expected));
  }
  return w;
}

}  // namespace ebb
