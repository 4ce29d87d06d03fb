#pragma once
// Reports an arena's accounting as benchmark counters: the peak bytes in use (all tags and per
// tag) and the peak bytes held from the device, over the benchmark's iterations.
#include <benchmark/benchmark.h>

#include "backend/arena.h"

namespace ebb {

inline void report_arena_peaks(benchmark::State& state, const Arena& arena) {
  const ArenaStats s = arena.stats();
  const auto bytes = [](uint64_t b) {
    return benchmark::Counter(double(b), benchmark::Counter::kDefaults,
                              benchmark::Counter::kIs1024);
  };
  state.counters["peak_in_use"] = bytes(s.peak_total);
  state.counters["peak_weights"] = bytes(s.peak[int(MemoryTag::Weights)]);
  state.counters["peak_activations"] = bytes(s.peak[int(MemoryTag::Activations)]);
  state.counters["peak_scratch"] = bytes(s.peak[int(MemoryTag::Scratch)]);
  state.counters["peak_reserved"] = bytes(s.peak_reserved);
}

inline benchmark::Counter flops_rate(double flops_per_iteration) {
  return benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                            benchmark::Counter::kIs1000);
}

}  // namespace ebb
