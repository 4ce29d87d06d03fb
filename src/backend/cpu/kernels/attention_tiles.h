#pragma once
// The inner steps of attention() for one block of query rows against one tile of keys, one
// implementation per instruction set. Everything a tile touches is stored query-minor
// ([channel or key][query], leading dimension kPanelStride) so the SIMD code vectorises across
// query rows: softmax reductions over keys become plain vertical operations, and keys and
// values are read one element at a time (broadcast), row by row.
#include <cstdint>

#include "backend/cpu/kernels/isa.h"

namespace ebb::cpu::attention_tiles {

// Query rows per block and keys per tile. A block's rows are padded (with zero queries) to a
// multiple of kQueryGroup, the width of one register tile.
inline constexpr int64_t kQueryBlock = 64;
inline constexpr int64_t kKeyTile = 64;
inline constexpr int64_t kQueryGroup = 16;
// Leading dimension of the query-minor panels: 80 floats are five cache lines, so walking a
// panel's channels visits every cache set instead of a quarter of them.
inline constexpr int64_t kPanelStride = kQueryBlock + kQueryGroup;

// Row stride (floats) of a packed key or value tile: at least dim, a whole and odd number of
// cache lines, so a column walk through the tile's rows spreads over all cache sets.
inline int64_t packed_row_floats(int64_t dim) {
  int64_t lines = (dim + 15) / 16;
  if (lines % 2 == 0) ++lines;
  return lines * 16;
}

// Panels qt, ot and s have leading dimension kPanelStride; kt and vt hold one key (value) per
// row with contiguous channels, rows k_stride (v_stride) floats apart.
struct Ops {
  // s[j][i] = Σ_d qt[d][i] · kt[j][d], for j < keys, i < rows.
  void (*scores)(float* s, const float* qt, const float* kt, int64_t k_stride, int64_t keys,
                 int64_t dim, int64_t rows);
  // Online softmax step for each query row i < rows, in base 2 (scores arrive multiplied by
  // log2 e, so 2^s is the softmax weight): folds the tile's scores s[j][i] (j < keys) into the
  // running max m[i] and sum l[i], turns s into weights 2^(s - new max), and sets
  // alpha[i] = 2^(old max - new max), the factor that rescales what was accumulated so far.
  // A row with no finite score yet keeps weights 0.
  void (*softmax_step)(float* s, float* m, float* l, float* alpha, int64_t keys, int64_t rows);
  // ot[d][i] = alpha[i] · ot[d][i] + Σ_j p[j][i] · vt[j][d].
  void (*accumulate)(float* ot, const float* p, const float* alpha, const float* vt,
                     int64_t v_stride, int64_t keys, int64_t dim, int64_t rows);
};

const Ops& portable_ops();
const Ops& avx2_ops();

inline const Ops& ops_for(Isa isa) {
  return isa == Isa::Avx2Fma ? avx2_ops() : portable_ops();
}

}  // namespace ebb::cpu::attention_tiles
