#pragma once
// What a backend tells an observer (a profiler) about each public op it runs: its name and
// operands when it starts, and when it has enqueued everything. Ops an op runs through another
// public op (to_floats through contiguous) are reported nested; an observer that times ops
// counts the outermost only. No observer, no cost beyond one pointer test per op.
#include <initializer_list>
#include <string_view>

#include "tensor/tensor.h"

namespace ebb {

// An op's operand as error messages and profiles name it: "w F16[320, 768]".
struct Operand {
  std::string_view name;
  const Tensor& tensor;
};

class OpObserver {
 public:
  virtual ~OpObserver() = default;
  virtual void op_begin(std::string_view op, std::initializer_list<Operand> operands) = 0;
  virtual void op_end() = 0;
};

// Reports one op to `observer` (may be null) for the scope's lifetime.
class OpScope {
 public:
  OpScope(OpObserver* observer, std::string_view op, std::initializer_list<Operand> operands)
      : observer_(observer) {
    if (observer_ != nullptr) observer_->op_begin(op, operands);
  }
  ~OpScope() {
    if (observer_ != nullptr) observer_->op_end();
  }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  OpObserver* observer_;
};

}  // namespace ebb
