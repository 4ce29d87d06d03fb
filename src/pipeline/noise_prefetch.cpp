#include "pipeline/noise_prefetch.h"

#include <algorithm>
#include <utility>

namespace ebb {

NoisePrefetch::NoisePrefetch(TorchCpuGenerator& generator, size_t size)
    : generator_(generator), size_(size) {
  start();
}

NoisePrefetch::~NoisePrefetch() {
  if (next_.valid()) next_.wait();
}

void NoisePrefetch::start() {
  next_ = std::async(std::launch::async, [from = generator_, size = size_]() mutable {
    Draw d{std::move(from), std::vector<float>(size)};
    d.after.randn(d.values);
    return d;
  });
}

void NoisePrefetch::randn(std::span<float> out) {
  Draw d = next_.get();
  if (out.size() == size_) {
    generator_ = std::move(d.after);
    std::copy(d.values.begin(), d.values.end(), out.begin());
  } else {
    generator_.randn(out);
  }
  start();
}

}  // namespace ebb
