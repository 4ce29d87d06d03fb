#include "backend/cpu/f32_weights.h"

#include <algorithm>

#include "tensor/dequantize.h"

namespace ebb::cpu {
namespace {

// Bound on the converted rows held at once.
constexpr uint64_t kWeightScratchBytes = uint64_t(16) << 20;

// Converts `rows` rows of `cols` values, spread over the pool (rows are independent, so the
// result does not depend on the split).
void rows_to_f32(const Context& ctx, DType t, const std::byte* src, int64_t rows, int64_t cols,
                 float* dst) {
  const uint64_t row_bytes = *dtype_bytes(t, uint64_t(cols));
  ctx.pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      dequantize_to_f32(t, src + r * row_bytes, dst + r * cols, uint64_t(cols));
  });
}

}  // namespace

bool reads_weight_dtype(DType t) {
  switch (t) {
    case DType::F64:
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F8_E4M3:
    case DType::F8_E5M2:
      return true;
    default:
      return dtype_info(t).quantized;
  }
}

F32WeightRows::F32WeightRows(const Context& ctx, const Tensor& w, std::string_view op)
    : ctx_(ctx), w_(w), rows_(w.dim(0)), cols_(rows_ > 0 ? w.numel() / rows_ : 0) {
  if (w.dtype() == DType::F32) {
    block_rows_ = rows_;
    return;
  }
  const int64_t row_floats = std::max<int64_t>(1, cols_);
  block_rows_ = std::clamp<int64_t>(int64_t(kWeightScratchBytes / sizeof(float)) / row_floats, 1,
                                    std::max<int64_t>(1, rows_));
  scratch_ = ctx.scratch(uint64_t(block_rows_) * row_floats * sizeof(float), op);
}

const float* F32WeightRows::get(int64_t first, int64_t count) {
  if (w_.dtype() == DType::F32) return w_.data<float>() + first * cols_;
  const uint64_t row_bytes = *dtype_bytes(w_.dtype(), uint64_t(cols_));
  float* dst = reinterpret_cast<float*>(scratch_->data());
  rows_to_f32(ctx_, w_.dtype(), w_.bytes() + first * row_bytes, count, cols_, dst);
  return dst;
}

F32Vector f32_vector(const Context& ctx, const Tensor& t, std::string_view op) {
  if (!t.defined()) return {};
  if (t.dtype() == DType::F32) return {t.data<float>(), nullptr};
  auto scratch = ctx.scratch(uint64_t(t.numel()) * sizeof(float), op);
  float* dst = reinterpret_cast<float*>(scratch->data());
  dequantize_to_f32(t.dtype(), t.bytes(), dst, uint64_t(t.numel()));
  return {dst, std::move(scratch)};
}

}  // namespace ebb::cpu
