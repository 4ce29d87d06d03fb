#pragma once
// Model code knows what shape each weight must have from its config; a checkpoint of another
// architecture or size is reported at the first weight that disagrees, by name, instead of
// surfacing later as an op's shape error that names no weight.
#include <string_view>

#include "nn/leased_weights.h"
#include "tensor/shape.h"

namespace ebb {

// The weight `<prefix><name>` of the lease, failing unless its shape is `expected`.
Tensor get_with_shape(const LeasedWeights& weights, std::string_view name, const Shape& expected);

}  // namespace ebb
