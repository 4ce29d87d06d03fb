#pragma once
// The bridge between the weight store and compute: a module leases a block of weights and sees
// each one as a read-only Tensor over the store's memory (zero-copy). The tensors are valid
// while the lease lives; modules keep both together in one scope.
#include <string>
#include <string_view>

#include "tensor/tensor.h"
#include "weights/weight_store.h"

namespace ebb {

class LeasedWeights {
 public:
  LeasedWeights(WeightStore& store, std::string_view component, std::string_view block_prefix);

  // The weight `<block_prefix><name>`; fails naming the tensor when the model files lack it.
  Tensor get(std::string_view name) const;
  // The same, or an empty Tensor (optional operand) when the files have no such tensor.
  Tensor optional(std::string_view name) const;
  const std::string& prefix() const { return lease_.block(); }

 private:
  Tensor wrap(const Weight& w) const;
  WeightLease lease_;
};

}  // namespace ebb
