#include "backend/cuda/attention_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace ebb {
namespace {

using attention_plan::HeadDims;

// What the kernels of one head dimension allow.
struct KernelFamily {
  int most_warps;
  int most_row_tiles;
  int dim_split;
};

KernelFamily family(int64_t head_dim) {
  KernelFamily k{};
  const bool found = HeadDims::visit(head_dim, [&](auto dim) {
    using T = attention_tiling::Tiling<decltype(dim)::value>;
    k = {T::kWarps, T::kRowTiles, T::kDimSplit};
  });
  if (!found)
    fail("cuda_attention: head_dim {} is not supported (only {})", head_dim,
         fmt::join(HeadDims::kValues, ", "));
  return k;
}

// Calls f(plan) for every plan of a kernel family: 32-row warps first where they exist, then
// from the most warps per block down.
template <typename F>
void for_each_plan(const KernelFamily& k, F&& f) {
  for (int row_tiles = k.most_row_tiles; row_tiles >= 1; --row_tiles)
    for (int warps = k.most_warps; warps >= k.dim_split; warps /= 2)
      f(CudaAttentionPlan{16 * row_tiles, warps});
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

namespace attention_plan {

void check_shape(const CudaAttentionArgs& a) {
  if (a.dtype != DType::F16 && a.dtype != DType::BF16)
    fail("cuda_attention: dtype {} is not supported (F16 or BF16)", dtype_name(a.dtype));
  family(a.head_dim);
  // Rows are int in the kernel (with room for a tile past the end); batch and heads are grid
  // dimensions.
  constexpr int64_t kMaxLen = std::numeric_limits<int>::max() / 2;
  constexpr int64_t kMaxGrid = 65535;
  if (a.batch < 0 || a.batch > kMaxGrid || a.heads < 0 || a.heads > kMaxGrid || a.q_len < 0 ||
      a.q_len > kMaxLen || a.kv_len < 1 || a.kv_len > kMaxLen)
    fail("cuda_attention: invalid shape batch={} heads={} q_len={} kv_len={} head_dim={}", a.batch,
         a.heads, a.q_len, a.kv_len, a.head_dim);
  if (a.scale && !(*a.scale > 0.0f && std::isfinite(*a.scale)))
    fail("cuda_attention: scale {} must be positive and finite", *a.scale);
}

void check_plan(int64_t head_dim, const CudaAttentionPlan& plan) {
  bool found = false;
  for_each_plan(family(head_dim), [&](const CudaAttentionPlan& p) {
    found = found || (p.warp_rows == plan.warp_rows && p.block_warps == plan.block_warps);
  });
  if (!found)
    fail("cuda_attention: no plan of {} rows per warp and {} warps per block for head_dim {}",
         plan.warp_rows, plan.block_warps, head_dim);
}

}  // namespace attention_plan

bool cuda_attention_supports_head_dim(int64_t head_dim) {
  return HeadDims::visit(head_dim, [](auto) {});
}

std::vector<CudaAttentionPlan> cuda_attention_plans(int64_t head_dim) {
  std::vector<CudaAttentionPlan> plans;
  for_each_plan(family(head_dim), [&](const CudaAttentionPlan& p) { plans.push_back(p); });
  return plans;
}

CudaAttentionPlan cuda_attention_default_plan(const CudaAttentionArgs& a, int multiprocessors) {
  attention_plan::check_shape(a);
  const KernelFamily k = family(a.head_dim);
  const int64_t sms = std::max(multiprocessors, 1);
  const int64_t heads = a.batch * a.heads;
  // 32-row warps read each key and value fragment once for both row tiles, but a problem too
  // short to give every multiprocessor 8 of them (what keeps its tensor cores fed) gets twice
  // as many 16-row warps instead.
  int row_tiles = k.most_row_tiles;
  if (row_tiles > 1 && heads * ceil_div(a.q_len, 16 * row_tiles) * k.dim_split < 8 * sms)
    row_tiles = 1;
  // Smaller blocks only when large ones would leave over half of the multiprocessors idle:
  // every block streams all keys and values of its head, so halving the blocks doubles that
  // traffic.
  const auto blocks = [&](int warps) {
    return heads * ceil_div(a.q_len, warps / k.dim_split * 16 * row_tiles);
  };
  int warps = k.most_warps;
  while (warps > k.dim_split && 2 * blocks(warps) < sms) warps /= 2;
  return {16 * row_tiles, warps};
}

}  // namespace ebb
