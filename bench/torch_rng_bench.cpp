// Host time of one latent of PyTorch-compatible noise (what an ancestral sampler draws per step):
// SD1.5 at 512² and 1024², SDXL at 1024² (4 × H/8 × W/8 values).
#include <benchmark/benchmark.h>

#include <vector>

#include "pipeline/torch_rng.h"

namespace {

void randn_latent(benchmark::State& state) {
  ebb::TorchCpuGenerator generator(1);
  std::vector<float> noise(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    generator.randn(noise);
    benchmark::DoNotOptimize(noise.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(randn_latent)->Arg(4 * 64 * 64)->Arg(4 * 128 * 128)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
