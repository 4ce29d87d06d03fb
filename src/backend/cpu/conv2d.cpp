// conv2d as matrix products: out[o, p] = Σ_r w[o, r] · col[r, p] with r = (c, ky, kx) and p an
// output pixel. The column matrix is built for a tile of output pixels at a time so its
// scratch stays bounded; a 1×1 stride-1 unpadded convolution multiplies the input directly.
#include <algorithm>
#include <cstring>

#include "backend/cpu/blas.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/f32_weights.h"

namespace ebb::cpu {
namespace {

constexpr uint64_t kColumnScratchBytes = uint64_t(16) << 20;

struct ConvShape {
  int64_t channels, height, width;  // input
  int64_t kernel_h, kernel_w;
  int64_t out_h, out_w;
  Conv2dGeometry g;
};

// Fills col[r, j] = x[c, oy·s + ky − pad_top, ox·s + kx − pad_left] (0 outside the image) for
// the output pixels p = first + j, j < count.
void im2col(const Context& ctx, const ConvShape& s, const float* x, int64_t first, int64_t count,
            float* col) {
  const int64_t kk = s.kernel_h * s.kernel_w, stride = s.g.stride;
  ctx.pool.parallel_for(s.channels * kk, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = r / kk, ky = r % kk / s.kernel_w, kx = r % s.kernel_w;
      const float* plane = x + c * s.height * s.width;
      float* dst = col + r * count;
      // Output columns whose input column ix = ox·s − shift lies inside [0, width).
      const int64_t shift = s.g.pad_left - kx, last = s.width - 1 + shift;
      const int64_t ox_lo = std::min(shift > 0 ? (shift + stride - 1) / stride : 0, s.out_w);
      const int64_t ox_hi = last < 0 ? ox_lo : std::clamp(last / stride + 1, ox_lo, s.out_w);
      for (int64_t j = 0; j < count;) {
        const int64_t p = first + j, oy = p / s.out_w, ox0 = p % s.out_w;
        const int64_t ox1 = std::min(s.out_w, ox0 + count - j);  // this run: ox in [ox0, ox1)
        const int64_t iy = oy * stride + ky - s.g.pad_top;
        float* d = dst + j;  // d[ox − ox0]
        const int64_t lo = iy < 0 || iy >= s.height ? ox1 : std::clamp(ox_lo, ox0, ox1);
        const int64_t hi = std::clamp(ox_hi, lo, ox1);
        std::fill(d, d + (lo - ox0), 0.0f);
        if (hi > lo) {
          const float* row = plane + iy * s.width;
          if (stride == 1) {
            std::memcpy(d + (lo - ox0), row + (lo - shift), (hi - lo) * sizeof(float));
          } else {
            for (int64_t ox = lo; ox < hi; ++ox) d[ox - ox0] = row[ox * stride - shift];
          }
        }
        std::fill(d + (hi - ox0), d + (ox1 - ox0), 0.0f);
        j += ox1 - ox0;
      }
    }
  });
}

}  // namespace

void conv2d(const Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b,
            const Conv2dGeometry& g, const Tensor& out) {
  const ConvShape s{x.dim(1), x.dim(2), x.dim(3), w.dim(2), w.dim(3), out.dim(2), out.dim(3), g};
  const int64_t batch = x.dim(0), out_channels = w.dim(0);
  const int64_t pixels = s.out_h * s.out_w, depth = s.channels * s.kernel_h * s.kernel_w;
  const float* xd = x.data<float>();
  float* y = out.mutable_data<float>();

  const F32Vector bias = f32_vector(ctx, b, "conv2d");
  ctx.pool.parallel_for(batch * out_channels, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      std::fill(y + i * pixels, y + (i + 1) * pixels, bias.data ? bias.data[i % out_channels] : 0);
  });

  const bool pointwise = s.kernel_h == 1 && s.kernel_w == 1 && g.stride == 1 && g.pad_top == 0 &&
                         g.pad_left == 0 && g.pad_bottom == 0 && g.pad_right == 0;
  int64_t tile = pixels;
  std::shared_ptr<Storage> col_scratch;
  if (!pointwise) {
    const int64_t fit = int64_t(kColumnScratchBytes / sizeof(float)) / std::max<int64_t>(1, depth);
    // Multiples of 16 keep the product's column panels whole.
    if (fit < pixels) tile = std::max<int64_t>(16, fit / 16 * 16);
    tile = std::min(tile, pixels);
    col_scratch = ctx.scratch(uint64_t(depth) * tile * sizeof(float), "conv2d");
  }
  float* col = col_scratch ? reinterpret_cast<float*>(col_scratch->data()) : nullptr;

  F32WeightRows rows(ctx, w, "conv2d");
  for (int64_t o = 0; o < out_channels; o += rows.block_rows()) {
    const int64_t oc = std::min(rows.block_rows(), out_channels - o);
    const float* wd = rows.get(o, oc);
    for (int64_t n = 0; n < batch; ++n) {
      const float* xn = xd + n * s.channels * s.height * s.width;
      float* yn = y + (n * out_channels + o) * pixels;
      for (int64_t p = 0; p < pixels; p += tile) {
        const int64_t count = std::min(tile, pixels - p);
        if (pointwise) {
          gemm_a_b(ctx.threads(), oc, count, depth, wd, depth, xn + p, pixels, 1.0f, yn + p,
                   pixels);
        } else {
          im2col(ctx, s, xn, p, count, col);
          gemm_a_b(ctx.threads(), oc, count, depth, wd, depth, col, count, 1.0f, yn + p, pixels);
        }
      }
    }
  }
}

}  // namespace ebb::cpu
