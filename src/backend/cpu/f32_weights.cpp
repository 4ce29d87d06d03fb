#include "backend/cpu/f32_weights.h"

#include <algorithm>

namespace ebb::cpu {
namespace {

// Bound on the converted rows held at once.
constexpr uint64_t kWeightScratchBytes = uint64_t(16) << 20;

}  // namespace

bool reads_weight_dtype(DType t) {
  return t == DType::F32;
}

F32WeightRows::F32WeightRows(const Context& ctx, const Tensor& w, std::string_view op)
    : ctx_(ctx), w_(w), rows_(w.rank() > 0 ? w.dim(0) : 1) {
  cols_ = rows_ > 0 ? w.numel() / rows_ : 0;
  const int64_t row_bytes = std::max<int64_t>(1, cols_ * int64_t(sizeof(float)));
  block_rows_ = w.dtype() == DType::F32
                    ? rows_
                    : std::clamp<int64_t>(int64_t(kWeightScratchBytes) / row_bytes, 1, rows_);
  if (w.dtype() != DType::F32 && rows_ > 0)
    scratch_ = ctx.scratch(uint64_t(block_rows_) * row_bytes, op);
}

const float* F32WeightRows::get(int64_t first, int64_t count) {
  (void)count;
  return w_.data<float>() + first * cols_;
}

F32Vector f32_vector(const Context&, const Tensor& t, std::string_view) {
  if (!t.defined()) return {};
  return {t.data<float>(), nullptr};
}

}  // namespace ebb::cpu
