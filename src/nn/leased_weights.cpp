#include "nn/leased_weights.h"

namespace ebb {

LeasedWeights::LeasedWeights(WeightStore& store, std::string_view component,
                             std::string_view block_prefix)
    : lease_(store.lease(component, block_prefix)) {}

Tensor LeasedWeights::wrap(const Weight& w) const {
  // The store owns the bytes for at least as long as the lease, so the tensor needs no owner.
  return Tensor::wrap(w.bytes.data(), w.bytes.size(), w.dtype,
                      Shape(w.shape().begin(), w.shape().end()), w.device, nullptr);
}

Tensor LeasedWeights::get(std::string_view name) const {
  return wrap(lease_.get(lease_.block() + std::string(name)));
}

Tensor LeasedWeights::optional(std::string_view name) const {
  const Weight* w = lease_.find(lease_.block() + std::string(name));
  return w ? wrap(*w) : Tensor();
}

}  // namespace ebb
