#pragma once
// Host-side knowledge of the attention kernels: which head dimensions and row-tile counts are
// built, and the checks on a plan. Shared by the launcher and the plan choice.
#include <cstdint>
#include <type_traits>

#include "backend/cuda/attention.h"
#include "backend/cuda/attention_tiling.cuh"

namespace ebb::attention_plan {

template <int... kDims>
struct HeadDimList {
  static constexpr int64_t kValues[] = {kDims...};
  // Calls f(std::integral_constant<int, D>{}) for the D equal to head_dim; false when none is.
  template <typename F>
  static bool visit(int64_t head_dim, F&& f) {
    return ((head_dim == kDims && (f(std::integral_constant<int, kDims>{}), true)) || ...);
  }
};
using HeadDims = HeadDimList<40, 64, 80, 128, 160, 512>;

// Calls f(std::integral_constant<int, R>{}) for the kernel of R 16-row tiles per warp that
// warp_rows asks for; false when head dimension D has no such kernel.
template <int kHeadDim, typename F>
bool visit_row_tiles(int warp_rows, F&& f) {
  constexpr int kMost = attention_tiling::Tiling<kHeadDim>::kRowTiles;
  static_assert(kMost == 1 || kMost == 2);
  if (warp_rows == 16) return f(std::integral_constant<int, 1>{}), true;
  if constexpr (kMost == 2)
    if (warp_rows == 32) return f(std::integral_constant<int, 2>{}), true;
  return false;
}

// ebb::Error for an unsupported dtype or head dimension, a bad shape or scale.
void check_shape(const CudaAttentionArgs& args);

// ebb::Error unless `plan` is one of cuda_attention_plans(head_dim).
void check_plan(int64_t head_dim, const CudaAttentionPlan& plan);

}  // namespace ebb::attention_plan
