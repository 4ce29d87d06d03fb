// f32 matrix products: OpenBLAS's own sgemm against the CPU backend's linear op on the same
// shapes (weights [out, in] as PyTorch stores them). FLOPS counters are 2·m·n·k per second.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "bench_memory.h"

namespace ebb {
namespace {

// Args: m, n, k (x [m, k], w [n, k]).
void BM_OpenBlasSgemm(benchmark::State& state) {
  const int m = int(state.range(0)), n = int(state.range(1)), k = int(state.range(2));
  std::vector<float> a(size_t(m) * k, 0.5f), b(size_t(n) * k, 0.25f), c(size_t(m) * n);
  openblas_set_num_threads(ThreadPool::physical_cores());
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a.data(), k, b.data(), k,
                0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["FLOPS"] = flops_rate(2.0 * m * n * k);
  state.counters["threads"] = ThreadPool::physical_cores();
}

void BM_Linear(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  CpuBackend be;
  Tensor x = be.empty({m, k}), w = be.empty({n, k}, DType::F32, MemoryTag::Weights);
  std::vector<float> xs(m * k, 0.5f), ws(n * k, 0.25f);
  be.write(x, xs.data(), xs.size() * sizeof(float));
  be.write(w, ws.data(), ws.size() * sizeof(float));
  be.arena().reset_peaks();
  for (auto _ : state) benchmark::DoNotOptimize(be.linear(x, w, {}).bytes());
  state.counters["FLOPS"] = flops_rate(2.0 * m * n * k);
  state.counters["threads"] = be.threads();
  report_arena_peaks(state, be.arena());
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  b->Args({4096, 4096, 4096});
  b->Args({4096, 320, 320});    // SD1.5 attention projection at 64×64 latents
  b->Args({4096, 3072, 3072});  // Flux-like hidden projection, 4096 image tokens
  b->Args({77, 1280, 2048});    // SDXL cross-attention context
  b->Args({1280, 256, 11520});  // the product inside conv2d 1280->1280 3x3 at 16x16
  // Process CPU time (all threads) beside wall time shows how far other load on the machine
  // stretched a run.
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
}

BENCHMARK(BM_OpenBlasSgemm)->Apply(gemm_shapes);
BENCHMARK(BM_Linear)->Apply(gemm_shapes);

}  // namespace
}  // namespace ebb

BENCHMARK_MAIN();
