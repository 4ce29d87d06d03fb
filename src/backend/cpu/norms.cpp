// Normalisations: statistics in double over a fixed element order (vector_kernels.h), then one
// pass writing the normalised values. Variances are the biased (population) ones, as PyTorch's.
#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/f32_weights.h"
#include "backend/cpu/vector_kernels.h"

namespace ebb::cpu {
namespace {

struct Moments {
  double mean, rstd;
};

Moments moments(const VectorKernels& k, const float* x, int64_t n, float eps) {
  if (n == 0) return {0.0, 1.0 / std::sqrt(double(eps))};
  const double mean = k.sum(x, n) / double(n);
  const double var = k.sum_squared_deviations(x, n, mean) / double(n);
  return {mean, 1.0 / std::sqrt(var + eps)};
}

}  // namespace

void group_norm(const Context& ctx, const Tensor& x, int64_t groups, const Tensor& gamma,
                const Tensor& beta, float eps, const Tensor& out) {
  const int64_t channels = x.dim(1), spatial = x.dim(2), per_group = channels / groups;
  const float* xd = x.data<float>();
  float* y = out.mutable_data<float>();
  const F32Vector g = f32_vector(ctx, gamma, "group_norm");
  const F32Vector b = f32_vector(ctx, beta, "group_norm");
  const VectorKernels& k = vector_kernels();
  ctx.pool.parallel_for(x.dim(0) * groups, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t first = i * per_group;  // first channel of the group, counting the batch
      const Moments m = moments(k, xd + first * spatial, per_group * spatial, eps);
      for (int64_t c = first; c < first + per_group; ++c) {
        const int64_t ch = c % channels;
        const float scale = float(m.rstd) * (g.data ? g.data[ch] : 1.0f);
        k.scale_shift(xd + c * spatial, y + c * spatial, spatial, float(m.mean), scale,
                      b.data ? b.data[ch] : 0.0f);
      }
    }
  });
}

void layer_norm(const Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                float eps, const Tensor& out) {
  const int64_t d = x.dim(1);
  const float* xd = x.data<float>();
  float* y = out.mutable_data<float>();
  const F32Vector g = f32_vector(ctx, gamma, "layer_norm");
  const F32Vector b = f32_vector(ctx, beta, "layer_norm");
  const VectorKernels& k = vector_kernels();
  ctx.pool.parallel_for(x.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const Moments m = moments(k, xd + r * d, d, eps);
      k.normalize(xd + r * d, y + r * d, d, float(m.mean), float(m.rstd), g.data, b.data);
    }
  });
}

void rms_norm(const Context& ctx, const Tensor& x, const Tensor& gamma, float eps,
              const Tensor& out) {
  const int64_t d = x.dim(1);
  const float* xd = x.data<float>();
  float* y = out.mutable_data<float>();
  const F32Vector g = f32_vector(ctx, gamma, "rms_norm");
  const VectorKernels& k = vector_kernels();
  ctx.pool.parallel_for(x.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const double mean_square = d > 0 ? k.sum_squares(xd + r * d, d) / double(d) : 0.0;
      const float rstd = float(1.0 / std::sqrt(mean_square + eps));
      k.normalize(xd + r * d, y + r * d, d, 0.0f, rstd, g.data, nullptr);
    }
  });
}

}  // namespace ebb::cpu
