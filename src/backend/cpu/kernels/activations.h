#pragma once
// Element-wise activations on f32, multithreaded over the elements. Every function accepts
// y == x (in place); otherwise x and y must not overlap. Results are the same bits whatever
// the thread count, for a given instruction set.
#include <cstdint>

#include "backend/cpu/kernels/isa.h"

namespace ebb {
class ThreadPool;
}

namespace ebb::cpu {

// torch.nn.functional.gelu's `approximate` argument.
enum class GeluApproximation {
  None,  // x·Φ(x) with the exact normal CDF (erf): torch's default
  Tanh,  // x/2·(1 + tanh(√(2/π)(x + 0.044715x³)))
};

// y = x · sigmoid(x)
void silu(const float* x, float* y, int64_t n, ThreadPool& pool, Isa isa = detected_isa());

// y = 1 / (1 + e^-x)
void sigmoid(const float* x, float* y, int64_t n, ThreadPool& pool, Isa isa = detected_isa());

void gelu(const float* x, float* y, int64_t n, GeluApproximation approximation, ThreadPool& pool,
          Isa isa = detected_isa());

// GEGLU as diffusers computes it: each row of x holds 2·cols values, `hidden` then `gate`
// (proj(x).chunk(2, -1)), and y[r][c] = hidden[r][c] · gelu(gate[r][c]). Rows are
// x_row_stride and y_row_stride floats apart. y may be x itself (the result then overwrites
// the hidden half of each row).
void geglu(const float* x, int64_t x_row_stride, float* y, int64_t y_row_stride, int64_t rows,
           int64_t cols, GeluApproximation approximation, ThreadPool& pool,
           Isa isa = detected_isa());

}  // namespace ebb::cpu
