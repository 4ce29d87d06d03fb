// conv2d on SD1.5 UNet shapes: GFLOP/s (2·O·C·kh·kw·H'·W' per call) and the arena's peaks
// (the bounded im2col scratch shows in peak_scratch).
#include <benchmark/benchmark.h>

#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "bench_memory.h"

namespace ebb {
namespace {

// Args: channels in, channels out, size (square), kernel, stride.
void BM_Conv2d(benchmark::State& state) {
  const int64_t c = state.range(0), o = state.range(1), size = state.range(2);
  const int64_t kernel = state.range(3), stride = state.range(4);
  const int pad = int(kernel / 2);
  CpuBackend be;
  Tensor x = be.empty({1, c, size, size});
  Tensor w = be.empty({o, c, kernel, kernel}, DType::F32, MemoryTag::Weights);
  Tensor b = be.empty({o}, DType::F32, MemoryTag::Weights);
  std::vector<float> xs(x.numel(), 0.5f), ws(w.numel(), 0.01f), bs(o, 0.1f);
  be.write(x, xs.data(), xs.size() * sizeof(float));
  be.write(w, ws.data(), ws.size() * sizeof(float));
  be.write(b, bs.data(), bs.size() * sizeof(float));
  be.arena().reset_peaks();
  int64_t out_pixels = 0;
  for (auto _ : state) {
    Tensor y = be.conv2d(x, w, b, int(stride), pad);
    out_pixels = y.dim(2) * y.dim(3);
    benchmark::DoNotOptimize(y.bytes());
  }
  state.counters["FLOPS"] = flops_rate(2.0 * o * c * kernel * kernel * out_pixels);
  state.counters["threads"] = be.threads();
  report_arena_peaks(state, be.arena());
}

BENCHMARK(BM_Conv2d)
    ->ArgNames({"cin", "cout", "size", "k", "stride"})
    ->Args({320, 320, 64, 3, 1})
    ->Args({1280, 1280, 16, 3, 1})
    ->Args({640, 640, 32, 3, 2})
    ->Args({640, 320, 32, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
}  // namespace ebb

BENCHMARK_MAIN();
