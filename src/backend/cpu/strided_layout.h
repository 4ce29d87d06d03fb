#pragma once
// Operands of one shape, walked together: dimensions are merged wherever every operand's
// strides allow, so the innermost run is as long as the layouts permit (a dense tensor becomes
// one run; a [N, C, H, W] tensor plus a [C, 1, 1] bias becomes runs of H·W).
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <vector>

#include "backend/cpu/thread_pool.h"
#include "tensor/shape.h"

namespace ebb::cpu {

class StridedLayout {
 public:
  StridedLayout(const Shape& shape, std::initializer_list<const Strides*> operands);

  int64_t numel() const { return numel_; }
  int64_t inner() const { return shape_.back(); }
  // Stride of the innermost dimension for operand `k`.
  int64_t inner_stride(int k) const { return strides_[k].back(); }

  // Calls fn(offsets, count) for runs of elements along the innermost dimension covering
  // [0, numel()) in row-major order, split over the pool. offsets[k] is the element offset
  // of the run's first element in operand k.
  void for_each_run(ThreadPool& pool,
                    const std::function<void(const int64_t* offsets, int64_t count)>& fn) const;

 private:
  Shape shape_;
  std::vector<Strides> strides_;
  int64_t numel_;
};

}  // namespace ebb::cpu
