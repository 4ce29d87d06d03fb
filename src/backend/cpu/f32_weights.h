#pragma once
// Weights and parameters as F32 for the CPU kernels: F32 tensors are read in place (zero-copy,
// e.g. straight from a mapped file); other dtypes are converted into scratch, a block of rows
// at a time so the scratch stays bounded whatever the weight's size.
#include <cstdint>
#include <memory>
#include <string_view>

#include "backend/cpu/cpu_ops.h"

namespace ebb::cpu {

// Whether the CPU backend reads weights and parameters of this dtype: float types and
// GGUF block types.
bool reads_weight_dtype(DType t);

// Rows of a dense weight viewed as a matrix [rows, cols]: dimension 0 by the rest.
class F32WeightRows {
 public:
  F32WeightRows(const Context& ctx, const Tensor& w, std::string_view op);
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // How many rows one get() may ask for.
  int64_t block_rows() const { return block_rows_; }
  // Rows [first, first + count) as F32, row after row; valid until the next call.
  const float* get(int64_t first, int64_t count);

 private:
  const Context& ctx_;
  const Tensor& w_;
  int64_t rows_, cols_, block_rows_;
  std::shared_ptr<Storage> scratch_;
};

// A parameter vector (bias, gamma, beta) as F32, or null data for an undefined tensor.
struct F32Vector {
  const float* data = nullptr;
  std::shared_ptr<Storage> scratch;
};
F32Vector f32_vector(const Context& ctx, const Tensor& t, std::string_view op);

}  // namespace ebb::cpu
