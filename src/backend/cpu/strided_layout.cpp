#include "backend/cpu/strided_layout.h"

#include <algorithm>

#include "core/error.h"

namespace ebb::cpu {
namespace {

constexpr int kMaxOperands = 3;

}  // namespace

StridedLayout::StridedLayout(const Shape& shape, std::initializer_list<const Strides*> operands)
    : strides_(operands.size()), numel_(shape_numel(shape)) {
  if (operands.size() > kMaxOperands) fail("strided layout: {} operands", operands.size());
  // Size-1 dimensions carry no layout; the rest merge outward from the innermost.
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    bool merge = !shape_.empty();
    size_t k = 0;
    for (const Strides* s : operands) merge = merge && strides_[k++].back() == (*s)[i] * shape[i];
    if (merge) {
      shape_.back() *= shape[i];
      k = 0;
      for (const Strides* s : operands) strides_[k++].back() = (*s)[i];
    } else {
      shape_.push_back(shape[i]);
      k = 0;
      for (const Strides* s : operands) strides_[k++].push_back((*s)[i]);
    }
  }
  if (shape_.empty()) {
    shape_.push_back(1);
    for (auto& s : strides_) s.push_back(1);
  }
}

void StridedLayout::for_each_run(
    ThreadPool& pool, const std::function<void(const int64_t* offsets, int64_t count)>& fn) const {
  const int rank = static_cast<int>(shape_.size());
  const int ops = static_cast<int>(strides_.size());
  pool.parallel_for(numel_, [&](int64_t begin, int64_t end) {
    int64_t offsets[kMaxOperands];
    for (int64_t at = begin; at < end;) {
      int64_t rest = at / inner(), col = at % inner();
      for (int k = 0; k < ops; ++k) offsets[k] = col * strides_[k].back();
      for (int d = rank - 2; d >= 0; --d) {
        const int64_t idx = rest % shape_[d];
        rest /= shape_[d];
        for (int k = 0; k < ops; ++k) offsets[k] += idx * strides_[k][d];
      }
      const int64_t count = std::min(inner() - col, end - at);
      fn(offsets, count);
      at += count;
    }
  });
}

}  // namespace ebb::cpu
