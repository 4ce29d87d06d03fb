#include <algorithm>
#include <cstring>

#include "backend/cpu/blas.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/f32_weights.h"

namespace ebb::cpu {

void linear(const Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b,
            const Tensor& out) {
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(0);
  const float* xd = x.data<float>();
  float* y = out.mutable_data<float>();
  // The bias is laid down first and the product accumulated onto it (beta = 1).
  const F32Vector bias = f32_vector(ctx, b, "linear");
  if (bias.data) {
    ctx.pool.parallel_for(m, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) std::memcpy(y + i * n, bias.data, n * sizeof(float));
    });
  }
  const float beta = bias.data ? 1.0f : 0.0f;
  F32WeightRows rows(ctx, w, "linear");
  for (int64_t first = 0; first < n; first += rows.block_rows()) {
    const int64_t count = std::min(rows.block_rows(), n - first);
    gemm_a_bt(ctx.threads(), m, count, k, xd, k, rows.get(first, count), k, beta, y + first, n);
  }
}

}  // namespace ebb::cpu
