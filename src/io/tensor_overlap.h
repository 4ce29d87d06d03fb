#pragma once
// Weight-file parsers refuse tensors whose bytes overlap: writing one would change another, and
// no exporter makes such files.
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "io/tensor_info.h"

namespace ebb {

// Indices of `tensors` by file offset; tensors at the same offset keep their given order.
std::vector<size_t> order_by_offset(std::span<const TensorInfo> tensors);

struct TensorOverlap {
  size_t tensor;   // index of the tensor that overlaps
  size_t earlier;  // index of the non-empty tensor before it in offset order whose bytes it shares
};

// The first tensor in `order` (from order_by_offset) whose bytes overlap those of a tensor
// before it; empty tensors overlap nothing.
std::optional<TensorOverlap> first_overlap(std::span<const TensorInfo> tensors,
                                           std::span<const size_t> order);

}  // namespace ebb
