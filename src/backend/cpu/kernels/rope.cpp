#include "backend/cpu/kernels/rope.h"

#include <cmath>

#include "backend/cpu/kernels/pointwise_kernels.h"
#include "core/error.h"

namespace ebb::cpu {

void rope_tables(const float* ids, int64_t tokens, std::span<const int64_t> axes_dim, double theta,
                 float* cos_out, float* sin_out) {
  int64_t pairs = 0;
  for (int64_t d : axes_dim) {
    if (d <= 0 || d % 2 != 0) fail("rope: axis dimension {} is not a positive even number", d);
    pairs += d / 2;
  }
  if (tokens < 0) fail("rope: negative token count {}", tokens);
  if (!(theta > 0.0)) fail("rope: theta {} is not positive", theta);
  if (tokens == 0 || pairs == 0) return;
  if (!ids || !cos_out || !sin_out) fail("rope: null ids or tables");

  const int64_t axes = static_cast<int64_t>(axes_dim.size());
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t p = t * pairs;
    for (int64_t a = 0; a < axes; ++a) {
      const double pos = ids[t * axes + a];
      const int64_t d = axes_dim[a];
      for (int64_t k = 0; k < d / 2; ++k, ++p) {
        const double angle = pos * (1.0 / std::pow(theta, static_cast<double>(2 * k) / d));
        cos_out[p] = static_cast<float>(std::cos(angle));
        sin_out[p] = static_cast<float>(std::sin(angle));
      }
    }
  }
}

void apply_rope(const float* x, const Strides4& xs, float* y, const Strides4& ys,
                const RopeShape& s, const float* cos, const float* sin, RopeLayout layout,
                ThreadPool& pool) {
  if (s.batch < 0 || s.heads < 0 || s.tokens < 0 || s.head_dim <= 0 || s.head_dim % 2 != 0)
    fail("rope: invalid shape batch={} heads={} tokens={} head_dim={} (head_dim must be even)",
         s.batch, s.heads, s.tokens, s.head_dim);
  const int64_t rows = s.batch * s.heads * s.tokens;
  if (rows == 0) return;
  if (!x || !y || !cos || !sin) fail("rope: null input, output or table");

  const int64_t pairs = s.head_dim / 2;
  // Offsets of the two channels of pair p, in units of the channel stride.
  const int64_t first_step = layout == RopeLayout::InterleavedPairs ? 2 : 1;
  const int64_t second_offset = layout == RopeLayout::InterleavedPairs ? 1 : pairs;
  pointwise::split_items(pool, rows, rows * s.head_dim, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t t = r % s.tokens, bh = r / s.tokens;
      const int64_t b = bh / s.heads, h = bh % s.heads;
      const float* xr = x + b * xs.batch + h * xs.head + t * xs.row;
      float* yr = y + b * ys.batch + h * ys.head + t * ys.row;
      const float* c = cos + t * pairs;
      const float* sn = sin + t * pairs;
      for (int64_t p = 0; p < pairs; ++p) {
        const int64_t i0 = p * first_step, i1 = i0 + second_offset;
        const float a = xr[i0 * xs.col], bv = xr[i1 * xs.col];
        const float a_cos = a * c[p], b_sin = bv * sn[p];
        const float b_cos = bv * c[p], a_sin = a * sn[p];
        yr[i0 * ys.col] = a_cos - b_sin;
        yr[i1 * ys.col] = b_cos + a_sin;
      }
    }
  });
}

}  // namespace ebb::cpu
