// Attention throughput on the shapes the models use. Arguments: heads, q_len, kv_len,
// head_dim, threads (0: physical cores), isa (0 portable, 1 avx2+fma).
// Counters: GFLOP/s counts 4·B·H·Lq·Lkv·D flops per call; scratch_bytes is the peak scratch
// attention() asks for (the only memory it uses besides its inputs and output).
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/kernels/attention.h"
#include "backend/cpu/thread_pool.h"

namespace {

using ebb::ThreadPool;
using namespace ebb::cpu;

ThreadPool& pool_of(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<ThreadPool>(threads);
  return *pool;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

void BM_Attention(benchmark::State& state) {
  const AttentionShape shape{1, state.range(0), state.range(1), state.range(2), state.range(3)};
  ThreadPool& pool = pool_of(static_cast<int>(state.range(4)));
  const Isa isa = state.range(5) ? Isa::Avx2Fma : Isa::Portable;
  if (!isa_supported(isa)) {
    state.SkipWithError("instruction set not supported here");
    return;
  }
  const int64_t h = shape.heads, d = shape.head_dim;
  auto q = random_floats(h * shape.q_len * d, 1);
  auto k = random_floats(h * shape.kv_len * d, 2);
  auto v = random_floats(h * shape.kv_len * d, 3);
  std::vector<float> out(q.size());
  std::vector<std::byte> scratch(attention_scratch_bytes(shape, pool.size()));
  // Projections produce [B, L, H, D]; attention reads it in place.
  AttentionArgs args;
  args.shape = shape;
  args.q = q.data();
  args.q_strides = blhd_strides(h, shape.q_len, d);
  args.k = k.data();
  args.k_strides = blhd_strides(h, shape.kv_len, d);
  args.v = v.data();
  args.v_strides = blhd_strides(h, shape.kv_len, d);
  args.out = out.data();
  args.out_strides = blhd_strides(h, shape.q_len, d);
  for (auto _ : state) {
    attention(args, scratch, pool, isa);
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = 4.0 * h * shape.q_len * shape.kv_len * d;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["scratch_bytes"] = static_cast<double>(scratch.size());
  state.counters["threads"] = pool.size();
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"heads", "lq", "lkv", "d", "threads", "avx2"});
  for (int threads : {1, 0}) {
    b->Args({8, 4096, 4096, 40, threads, 1});  // SD1.5 64x64 latent, first stage
    b->Args({8, 4096, 4096, 64, threads, 1});
    b->Args({8, 4096, 4096, 128, threads, 1});
    b->Args({8, 4096, 77, 40, threads, 1});     // SD1.5 cross-attention
    b->Args({1, 1024, 1024, 512, threads, 1});  // VAE mid-block at 256x256
  }
  b->Args({8, 4096, 4096, 40, 0, 0});
}

BENCHMARK(BM_Attention)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
