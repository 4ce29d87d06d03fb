#include "nn/vae_resnet_block.h"

namespace ebb {

Tensor vae_resnet_block(Backend& backend, const LeasedWeights& w, const Tensor& x) {
  Tensor h = backend.group_norm(x, kVaeNormGroups, w.get("norm1.weight"), w.get("norm1.bias"),
                                kVaeNormEps);
  h = backend.conv2d(backend.silu(h), w.get("conv1.weight"), w.get("conv1.bias"), 1, 1);
  h = backend.group_norm(h, kVaeNormGroups, w.get("norm2.weight"), w.get("norm2.bias"),
                         kVaeNormEps);
  h = backend.conv2d(backend.silu(h), w.get("conv2.weight"), w.get("conv2.bias"), 1, 1);
  const Tensor shortcut = w.optional("nin_shortcut.weight");
  if (!shortcut.defined()) return backend.add(x, h);
  return backend.add(backend.conv2d(x, shortcut, w.get("nin_shortcut.bias"), 1, 0), h);
}

}  // namespace ebb
