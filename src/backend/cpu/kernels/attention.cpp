#include "backend/cpu/kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "backend/cpu/kernels/attention_tiles.h"
#include "backend/cpu/thread_pool.h"
#include "core/error.h"

namespace ebb::cpu {
namespace {

using attention_tiles::kKeyTile;
using attention_tiles::kPanelStride;
using attention_tiles::kQueryBlock;
using attention_tiles::kQueryGroup;

constexpr size_t kAlign = 64;
constexpr float kLog2e = 1.44269504088896341f;
// Far above any model's head size, and low enough that no size computed from it overflows.
constexpr int64_t kMaxHeadDim = int64_t{1} << 20;

// One thread's working set, carved from the caller's scratch.
struct Workspace {
  float* qt;     // [dim][kPanelStride] scaled queries, transposed
  float* ot;     // [dim][kPanelStride] output accumulator, transposed
  float* s;      // [kKeyTile][kPanelStride] scores, then probabilities
  float* kt;     // [kKeyTile][kv_stride] the key tile, when packed
  float* vt;     // [kKeyTile][kv_stride] the value tile, when packed
  float* m;      // [kPanelStride] running max
  float* l;      // [kPanelStride] running sum
  float* alpha;  // [kPanelStride] rescale factor of the current step
  int64_t kv_stride;
};

int64_t workspace_floats(int64_t dim) {
  const int64_t kv_stride = attention_tiles::packed_row_floats(dim);
  return (2 * dim + kKeyTile + 3) * kPanelStride + 2 * kKeyTile * kv_stride;
}

size_t workspace_bytes(int64_t dim) {
  return (static_cast<size_t>(workspace_floats(dim)) * sizeof(float) + 2 * kAlign) / kAlign *
         kAlign;
}

Workspace carve(std::byte* base, int64_t dim) {
  Workspace w;
  w.kv_stride = attention_tiles::packed_row_floats(dim);
  auto addr = reinterpret_cast<uintptr_t>(base);
  float* f = reinterpret_cast<float*>((addr + kAlign - 1) / kAlign * kAlign);
  auto take = [&f](int64_t floats) { return std::exchange(f, f + floats); };
  w.qt = take(dim * kPanelStride);
  w.ot = take(dim * kPanelStride);
  w.s = take(kKeyTile * kPanelStride);
  w.kt = take(kKeyTile * w.kv_stride);
  w.vt = take(kKeyTile * w.kv_stride);
  w.m = take(kPanelStride);
  w.l = take(kPanelStride);
  w.alpha = take(kPanelStride);
  return w;
}

void check_shape(const AttentionShape& s) {
  if (s.batch < 0 || s.heads < 0 || s.q_len < 0 || s.kv_len < 0 || s.head_dim <= 0 ||
      s.head_dim > kMaxHeadDim)
    fail("attention: invalid shape batch={} heads={} q_len={} kv_len={} head_dim={}", s.batch,
         s.heads, s.q_len, s.kv_len, s.head_dim);
}

// The rows [row0, row0 + rows) of one (batch, head): everything one work item does.
struct QueryBlock {
  const float* q;
  const float* k;
  const float* v;
  const float* mask;  // null without a mask
  float* out;
  int64_t rows;
};

// Row by row, so q is read along its (usually contiguous) channels: reading one channel of 64
// rows instead touches 64 lines that [B, L, H, D] strides can map to a couple of cache sets.
void pack_queries(const Workspace& w, const QueryBlock& blk, const AttentionArgs& a, float scale,
                  int64_t padded_rows) {
  const int64_t dim = a.shape.head_dim;
  for (int64_t i = 0; i < blk.rows; ++i) {
    const float* src = blk.q + i * a.q_strides.row;
    for (int64_t d = 0; d < dim; ++d) w.qt[d * kPanelStride + i] = src[d * a.q_strides.col] * scale;
  }
  for (int64_t d = 0; d < dim; ++d)
    std::fill(w.qt + d * kPanelStride + blk.rows, w.qt + d * kPanelStride + padded_rows, 0.0f);
}

// Whether a key or value tile is read through a packed copy rather than in place. In place
// needs contiguous channels, and rows that do not crowd into a few cache sets: with rows a
// multiple of 512 bytes apart (as [B, L, H, D] memory often is), a walk down one channel of
// a 64-row tile would touch at most 8 of L1's 64 sets. The copy costs about 1/kQueryBlock of
// the arithmetic on the tile, so it is skipped whenever it is not needed.
bool needs_packing(const Strides4& s) {
  return s.col != 1 || s.row % 128 == 0;
}

// The rows [0, rows) of a key or value tile, packed into dst ([rows][stride]) when needed.
struct TileView {
  const float* data;
  int64_t row_stride;
};

TileView tile_view(float* dst, int64_t stride, const float* src, const Strides4& ss, int64_t rows,
                   int64_t dim) {
  if (!needs_packing(ss)) return {src, ss.row};
  for (int64_t j = 0; j < rows; ++j, src += ss.row) {
    float* row = dst + j * stride;
    if (ss.col == 1) {
      std::copy(src, src + dim, row);
    } else {
      for (int64_t d = 0; d < dim; ++d) row[d] = src[d * ss.col];
    }
  }
  return {dst, stride};
}

// Scores are in base-2 units (see attention_tiles::Ops::softmax_step), so is the mask added.
void add_mask(float* s, const float* mask, const Strides4& ms, int64_t rows, int64_t keys) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* mrow = mask + i * ms.row;
    for (int64_t j = 0; j < keys; ++j) s[j * kPanelStride + i] += mrow[j * ms.col] * kLog2e;
  }
}

void write_output(const Workspace& w, const QueryBlock& blk, const AttentionArgs& a) {
  const int64_t dim = a.shape.head_dim;
  for (int64_t i = 0; i < blk.rows; ++i) w.alpha[i] = w.l[i] > 0.0f ? 1.0f / w.l[i] : 0.0f;
  for (int64_t i = 0; i < blk.rows; ++i) {
    float* dst = blk.out + i * a.out_strides.row;
    for (int64_t d = 0; d < dim; ++d)
      dst[d * a.out_strides.col] = w.ot[d * kPanelStride + i] * w.alpha[i];
  }
}

void run_block(const Workspace& w, const QueryBlock& blk, const AttentionArgs& a, float q_scale,
               const attention_tiles::Ops& ops) {
  const int64_t dim = a.shape.head_dim;
  const int64_t padded = (blk.rows + kQueryGroup - 1) / kQueryGroup * kQueryGroup;
  pack_queries(w, blk, a, q_scale, padded);
  std::fill(w.ot, w.ot + dim * kPanelStride, 0.0f);
  std::fill(w.m, w.m + kPanelStride, -std::numeric_limits<float>::infinity());
  std::fill(w.l, w.l + kPanelStride, 0.0f);
  for (int64_t j0 = 0; j0 < a.shape.kv_len; j0 += kKeyTile) {
    const int64_t keys = std::min(kKeyTile, a.shape.kv_len - j0);
    const TileView k =
        tile_view(w.kt, w.kv_stride, blk.k + j0 * a.k_strides.row, a.k_strides, keys, dim);
    const TileView v =
        tile_view(w.vt, w.kv_stride, blk.v + j0 * a.v_strides.row, a.v_strides, keys, dim);
    ops.scores(w.s, w.qt, k.data, k.row_stride, keys, dim, padded);
    if (blk.mask) add_mask(w.s, blk.mask + j0 * a.mask_strides.col, a.mask_strides, blk.rows, keys);
    ops.softmax_step(w.s, w.m, w.l, w.alpha, keys, padded);
    ops.accumulate(w.ot, w.s, w.alpha, v.data, v.row_stride, keys, dim, padded);
  }
  write_output(w, blk, a);
}

}  // namespace

size_t attention_scratch_bytes(const AttentionShape& shape, int threads) {
  check_shape(shape);
  if (threads <= 0) fail("attention: thread count must be positive, got {}", threads);
  return workspace_bytes(shape.head_dim) * static_cast<size_t>(threads);
}

void attention(const AttentionArgs& a, std::span<std::byte> scratch, ThreadPool& pool, Isa isa) {
  require_isa(isa);
  const AttentionShape& s = a.shape;
  const size_t need = attention_scratch_bytes(s, pool.size());
  if (scratch.size() < need)
    fail("attention: scratch has {} bytes, needs {} (head_dim {}, {} threads)", scratch.size(),
         need, s.head_dim, pool.size());
  if (s.batch == 0 || s.heads == 0 || s.q_len == 0) return;
  if (!a.q || !a.k || !a.v || !a.out) fail("attention: a q, k, v or out pointer is null");

  const float scale = a.scale ? *a.scale : 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  // Softmax runs in base 2: e^(x·scale) = 2^(x·scale·log2 e).
  const float q_scale = scale * kLog2e;
  const attention_tiles::Ops& ops = attention_tiles::ops_for(isa);
  const int64_t blocks_per_head = (s.q_len + kQueryBlock - 1) / kQueryBlock;
  const size_t per_thread = workspace_bytes(s.head_dim);

  pool.parallel_chunks(
      s.batch * s.heads * blocks_per_head, [&](int chunk, int64_t begin, int64_t end) {
        const Workspace w = carve(scratch.data() + per_thread * chunk, s.head_dim);
        for (int64_t item = begin; item < end; ++item) {
          const int64_t bh = item / blocks_per_head;
          const int64_t b = bh / s.heads, h = bh % s.heads;
          const int64_t row0 = (item % blocks_per_head) * kQueryBlock;
          QueryBlock blk{
              a.q + b * a.q_strides.batch + h * a.q_strides.head + row0 * a.q_strides.row,
              a.k + b * a.k_strides.batch + h * a.k_strides.head,
              a.v + b * a.v_strides.batch + h * a.v_strides.head,
              a.mask ? a.mask + b * a.mask_strides.batch + h * a.mask_strides.head +
                           row0 * a.mask_strides.row
                     : nullptr,
              a.out + b * a.out_strides.batch + h * a.out_strides.head + row0 * a.out_strides.row,
              std::min(kQueryBlock, s.q_len - row0)};
          run_block(w, blk, a, q_scale, ops);
        }
      });
}

}  // namespace ebb::cpu
