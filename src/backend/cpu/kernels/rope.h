#pragma once
// Rotary position embedding (RoPE) on f32. Channel pairs of each head are rotated by an angle
// that depends on the token's position: pair p of token t turns by angle[t][p]. The tables hold
// cos and sin of those angles, [tokens][head_dim / 2], whichever channels form the pairs.
//
// SD3 and SD3.5 MMDiT use no RoPE (they normalise q and k with RMSNorm instead); Flux uses
// InterleavedPairs with axes_dim (16, 56, 56) and theta 10000.
#include <cstdint>
#include <span>

#include "backend/cpu/kernels/strides.h"

namespace ebb {
class ThreadPool;
}

namespace ebb::cpu {

enum class RopeLayout {
  // Pair p is (x[2p], x[2p+1]): Flux, diffusers apply_rotary_emb(use_real_unbind_dim=-1).
  InterleavedPairs,
  // Pair p is (x[p], x[p + D/2]), the "rotate half" form: apply_rotary_emb with
  // use_real_unbind_dim=-2.
  SplitHalves,
};

// Tables for multi-axis positions as diffusers FluxPosEmbed builds them: ids is [tokens][axes]
// (one position per axis; Flux: 0 / row / column), axes_dim[a] channels (even) belong to axis
// a, in order, and pair k of an axis with d channels turns by position · theta^(-2k/d). Angles
// are computed in double and rounded once, as FluxPosEmbed does. cos_out and sin_out are
// [tokens][Σ axes_dim / 2].
void rope_tables(const float* ids, int64_t tokens, std::span<const int64_t> axes_dim, double theta,
                 float* cos_out, float* sin_out);

struct RopeShape {
  int64_t batch = 1;
  int64_t heads = 1;
  int64_t tokens = 0;
  int64_t head_dim = 0;  // even
};

// y = rotate(x) for x, y indexed [batch, head, token, channel] through their strides; y may be
// x itself with the same strides. cos and sin are [tokens][head_dim / 2] (rope_tables).
// Computed as x·cos + rotated(x)·sin without fused multiply-adds, as diffusers does.
void apply_rope(const float* x, const Strides4& x_strides, float* y, const Strides4& y_strides,
                const RopeShape& shape, const float* cos, const float* sin, RopeLayout layout,
                ThreadPool& pool);

}  // namespace ebb::cpu
