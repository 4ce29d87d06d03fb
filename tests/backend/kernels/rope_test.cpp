#include "backend/cpu/kernels/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/thread_pool.h"
#include "core/error.h"
#include "kernel_test_util.h"

namespace ebb::cpu {
namespace {

using test::random_floats;

// Flux-like ids: a few text tokens at 0, then an image grid with (0, row, column).
std::vector<float> grid_ids(int64_t text, int64_t h, int64_t w) {
  std::vector<float> ids(3 * text, 0.0f);
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c) ids.insert(ids.end(), {0.0f, float(r), float(c)});
  return ids;
}

TEST(RopeTables, FollowEachAxisFrequencies) {
  const std::vector<int64_t> axes{16, 56, 56};
  const int64_t tokens = 4 + 6 * 5, pairs = 64;
  auto ids = grid_ids(4, 6, 5);
  ids[1] = 3.5f;  // a fractional position on the text axis
  std::vector<float> cos(tokens * pairs), sin(tokens * pairs);
  rope_tables(ids.data(), tokens, axes, 10000.0, cos.data(), sin.data());
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t p = 0;
    for (int64_t a = 0; a < 3; ++a)
      for (int64_t k = 0; k < axes[a] / 2; ++k, ++p) {
        const double angle = ids[t * 3 + a] * std::pow(10000.0, -2.0 * k / axes[a]);
        EXPECT_NEAR(cos[t * pairs + p], std::cos(angle), 1e-6);
        EXPECT_NEAR(sin[t * pairs + p], std::sin(angle), 1e-6);
      }
  }
}

TEST(RopeTables, RejectsOddAxes) {
  const float id = 0;
  float c, s;
  const std::vector<int64_t> odd{3};
  EXPECT_THROW(rope_tables(&id, 1, odd, 10000.0, &c, &s), Error);
}

// Rotates x by hand: pair p is (x[i0], x[i1]) and turns by the table's angle.
std::vector<float> naive_rope(const std::vector<float>& x, int64_t rows, int64_t tokens,
                              int64_t dim, const std::vector<float>& cos,
                              const std::vector<float>& sin, RopeLayout layout) {
  std::vector<float> y(x.size());
  const int64_t pairs = dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = r % tokens;
    for (int64_t p = 0; p < pairs; ++p) {
      const int64_t i0 = layout == RopeLayout::InterleavedPairs ? 2 * p : p;
      const int64_t i1 = layout == RopeLayout::InterleavedPairs ? 2 * p + 1 : p + pairs;
      const double a = x[r * dim + i0], b = x[r * dim + i1];
      const double c = cos[t * pairs + p], s = sin[t * pairs + p];
      y[r * dim + i0] = static_cast<float>(a * c - b * s);
      y[r * dim + i1] = static_cast<float>(b * c + a * s);
    }
  }
  return y;
}

TEST(ApplyRope, RotatesPairsOfEitherLayout) {
  ThreadPool pool(3);
  const RopeShape shape{2, 3, 37, 24};
  const int64_t rows = shape.batch * shape.heads * shape.tokens, pairs = shape.head_dim / 2;
  const auto x = random_floats(rows * shape.head_dim, 1, -3, 3);
  const auto angles = random_floats(shape.tokens * pairs, 2, -50, 50);
  std::vector<float> cos(angles.size()), sin(angles.size());
  for (size_t i = 0; i < angles.size(); ++i) {
    cos[i] = std::cos(angles[i]);
    sin[i] = std::sin(angles[i]);
  }
  const Strides4 bhld = bhld_strides(shape.heads, shape.tokens, shape.head_dim);
  for (auto layout : {RopeLayout::InterleavedPairs, RopeLayout::SplitHalves}) {
    const auto want = naive_rope(x, rows, shape.tokens, shape.head_dim, cos, sin, layout);
    std::vector<float> y(x.size());
    apply_rope(x.data(), bhld, y.data(), bhld, shape, cos.data(), sin.data(), layout, pool);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want[i], 1e-5) << i;

    // In place, on [B, L, H, D] memory holding the same values.
    const Strides4 blhd = blhd_strides(shape.heads, shape.tokens, shape.head_dim);
    std::vector<float> inplace(x.size());
    for (int64_t b = 0; b < shape.batch; ++b)
      for (int64_t h = 0; h < shape.heads; ++h)
        for (int64_t t = 0; t < shape.tokens; ++t)
          for (int64_t d = 0; d < shape.head_dim; ++d)
            inplace[b * blhd.batch + h * blhd.head + t * blhd.row + d] =
                x[b * bhld.batch + h * bhld.head + t * bhld.row + d];
    apply_rope(inplace.data(), blhd, inplace.data(), blhd, shape, cos.data(), sin.data(), layout,
               pool);
    for (int64_t b = 0; b < shape.batch; ++b)
      for (int64_t h = 0; h < shape.heads; ++h)
        for (int64_t t = 0; t < shape.tokens; ++t)
          for (int64_t d = 0; d < shape.head_dim; ++d)
            ASSERT_EQ(inplace[b * blhd.batch + h * blhd.head + t * blhd.row + d],
                      y[b * bhld.batch + h * bhld.head + t * bhld.row + d]);
  }
}

TEST(ApplyRope, RejectsOddHeadDim) {
  ThreadPool pool(1);
  float x[3] = {}, c = 1, s = 0;
  EXPECT_THROW(apply_rope(x, {3, 3, 3, 1}, x, {3, 3, 3, 1}, {1, 1, 1, 3}, &c, &s,
                          RopeLayout::InterleavedPairs, pool),
               Error);
}

}  // namespace
}  // namespace ebb::cpu
