#include "backend/cpu/kernels/softmax.h"

#include "backend/cpu/kernels/pointwise_kernels.h"
#include "core/error.h"

namespace ebb::cpu {

void softmax_rows(const float* x, int64_t x_row_stride, float* y, int64_t y_row_stride,
                  int64_t rows, int64_t cols, ThreadPool& pool, Isa isa) {
  require_isa(isa);
  if (rows < 0 || cols < 0) fail("softmax: invalid shape rows={} cols={}", rows, cols);
  if (x_row_stride < cols || y_row_stride < cols)
    fail("softmax: row strides x={} y={} shorter than a row of {}", x_row_stride, y_row_stride,
         cols);
  if (rows == 0 || cols == 0) return;
  if (!x || !y) fail("softmax: null input or output");
  const pointwise::UnaryFn fn = pointwise::kernels_for(isa).softmax;
  pointwise::split_items(pool, rows, rows * cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(x + r * x_row_stride, y + r * y_row_stride, cols);
  });
}

}  // namespace ebb::cpu
