#pragma once
// Single-threaded loops behind activations.h and softmax.h, one implementation per
// instruction set. Each element's result depends only on its own inputs (the SIMD versions
// run their tails through the same vector code), so how a range is split between threads
// never changes a bit of the output.
#include <cstdint>
#include <functional>

#include "backend/cpu/kernels/isa.h"
#include "backend/cpu/thread_pool.h"

namespace ebb::cpu::pointwise {

using UnaryFn = void (*)(const float* x, float* y, int64_t n);
// y[i] = hidden[i] · act(gate[i])
using GatedFn = void (*)(const float* hidden, const float* gate, float* y, int64_t n);

struct Kernels {
  UnaryFn silu;
  UnaryFn sigmoid;
  UnaryFn gelu_erf;
  UnaryFn gelu_tanh;
  GatedFn geglu_erf;
  GatedFn geglu_tanh;
  UnaryFn softmax;  // over the n values as one row
};

const Kernels& portable_kernels();
const Kernels& avx2_kernels();

inline const Kernels& kernels_for(Isa isa) {
  return isa == Isa::Avx2Fma ? avx2_kernels() : portable_kernels();
}

// Runs fn over [0, items) split across the pool, or all on the calling thread when the job
// touches so few elements that waking the pool would cost more than the work.
inline void split_items(ThreadPool& pool, int64_t items, int64_t elements,
                        const std::function<void(int64_t, int64_t)>& fn) {
  constexpr int64_t kSerialElements = int64_t{1} << 15;
  if (items <= 0) return;
  if (elements <= kSerialElements) {
    fn(0, items);
  } else {
    pool.parallel_for(items, fn);
  }
}

}  // namespace ebb::cpu::pointwise
