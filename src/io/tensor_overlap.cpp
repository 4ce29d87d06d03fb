#include "io/tensor_overlap.h"

#include <algorithm>
#include <numeric>

namespace ebb {

std::vector<size_t> order_by_offset(std::span<const TensorInfo> tensors) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  return order;
}

std::optional<TensorOverlap> first_overlap(std::span<const TensorInfo> tensors,
                                           std::span<const size_t> order) {
  // Sorted by start, non-empty ranges that do not overlap also end in order, so comparing
  // each one with the last non-empty range before it is enough.
  std::optional<size_t> previous;
  for (size_t i : order) {
    const TensorInfo& t = tensors[i];
    if (t.nbytes == 0) continue;
    if (previous) {
      const TensorInfo& p = tensors[*previous];
      if (p.offset + p.nbytes > t.offset) return TensorOverlap{i, *previous};
    }
    previous = i;
  }
  return std::nullopt;
}

}  // namespace ebb
