#pragma once
// Numerically stable softmax over the last dimension (max subtracted first), f32,
// multithreaded over rows. A row of all -inf gives NaN, as torch does.
#include <cstdint>

#include "backend/cpu/kernels/isa.h"

namespace ebb {
class ThreadPool;
}

namespace ebb::cpu {

// Each of `rows` rows holds `cols` contiguous values; rows are x_row_stride (y_row_stride)
// floats apart. y may be x itself with the same stride.
void softmax_rows(const float* x, int64_t x_row_stride, float* y, int64_t y_row_stride,
                  int64_t rows, int64_t cols, ThreadPool& pool, Isa isa = detected_isa());

}  // namespace ebb::cpu
