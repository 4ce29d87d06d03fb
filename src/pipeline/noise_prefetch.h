#pragma once
// Ancestral samplers draw a latent of Gaussian noise after every model call, on the host, where a
// GPU waits for it: PyTorch-compatible noise for a 1024² latent takes milliseconds per step.
// NoisePrefetch draws the next latent-sized noise on a worker thread, from a copy of the
// generator, while the model runs. The copy's values and state are taken over only when the
// sampler asks for a draw of that size, so the generator's stream, and every image, stays exactly
// what drawing in turn gives; a draw never asked for leaves the generator untouched.
#include <cstddef>
#include <future>
#include <span>
#include <vector>

#include "pipeline/torch_rng.h"

namespace ebb {

class NoisePrefetch {
 public:
  // Starts drawing the first `size` values at once. The generator must outlive this object and
  // must not be drawn from elsewhere while it exists.
  NoisePrefetch(TorchCpuGenerator& generator, size_t size);
  // Waits for the worker; its draw, never asked for, is dropped.
  ~NoisePrefetch();
  NoisePrefetch(const NoisePrefetch&) = delete;
  NoisePrefetch& operator=(const NoisePrefetch&) = delete;

  // Fills out like generator.randn(out), then starts drawing the next `size` values.
  void randn(std::span<float> out);

 private:
  struct Draw {
    TorchCpuGenerator after;  // the generator's state once these values are drawn
    std::vector<float> values;
  };
  void start();

  TorchCpuGenerator& generator_;
  size_t size_;
  std::future<Draw> next_;
};

}  // namespace ebb
