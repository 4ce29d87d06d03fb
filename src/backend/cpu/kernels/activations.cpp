#include "backend/cpu/kernels/activations.h"

#include "backend/cpu/kernels/pointwise_kernels.h"
#include "core/error.h"

namespace ebb::cpu {
namespace {

void check_count(const char* what, int64_t n, const void* x, const void* y) {
  if (n < 0) fail("{}: negative element count {}", what, n);
  if (n > 0 && (!x || !y)) fail("{}: null input or output", what);
}

void map_parallel(const char* what, pointwise::UnaryFn fn, const float* x, float* y, int64_t n,
                  ThreadPool& pool) {
  check_count(what, n, x, y);
  pointwise::split_items(
      pool, n, n, [&](int64_t begin, int64_t end) { fn(x + begin, y + begin, end - begin); });
}

pointwise::UnaryFn gelu_kernel(const pointwise::Kernels& k, GeluApproximation a) {
  return a == GeluApproximation::Tanh ? k.gelu_tanh : k.gelu_erf;
}

}  // namespace

void silu(const float* x, float* y, int64_t n, ThreadPool& pool, Isa isa) {
  require_isa(isa);
  map_parallel("silu", pointwise::kernels_for(isa).silu, x, y, n, pool);
}

void sigmoid(const float* x, float* y, int64_t n, ThreadPool& pool, Isa isa) {
  require_isa(isa);
  map_parallel("sigmoid", pointwise::kernels_for(isa).sigmoid, x, y, n, pool);
}

void gelu(const float* x, float* y, int64_t n, GeluApproximation approximation, ThreadPool& pool,
          Isa isa) {
  require_isa(isa);
  map_parallel("gelu", gelu_kernel(pointwise::kernels_for(isa), approximation), x, y, n, pool);
}

void geglu(const float* x, int64_t x_row_stride, float* y, int64_t y_row_stride, int64_t rows,
           int64_t cols, GeluApproximation approximation, ThreadPool& pool, Isa isa) {
  require_isa(isa);
  if (rows < 0 || cols < 0) fail("geglu: invalid shape rows={} cols={}", rows, cols);
  if (x_row_stride < 2 * cols || y_row_stride < cols)
    fail("geglu: row strides x={} y={} too small for {} columns", x_row_stride, y_row_stride, cols);
  check_count("geglu", rows * cols, x, y);
  const pointwise::Kernels& k = pointwise::kernels_for(isa);
  const pointwise::GatedFn fn =
      approximation == GeluApproximation::Tanh ? k.geglu_tanh : k.geglu_erf;
  pointwise::split_items(pool, rows, rows * cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = x + r * x_row_stride;
      fn(row, row + cols, y + r * y_row_stride, cols);
    }
  });
}

}  // namespace ebb::cpu
