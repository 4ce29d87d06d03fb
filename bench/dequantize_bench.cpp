// Throughput of dequantize_to_f32 (GB/s of f32 output) and of fill_random (GB/s written), per
// DType, on 16 MiB of encoded data: both run over whole weight tensors at load or write time.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "tensor/dequantize.h"
#include "tensor/dtype.h"
#include "tensor/random_blocks.h"

namespace {

constexpr uint64_t kInputBytes = 16ull << 20;

uint64_t whole_blocks(ebb::DType t) {
  return kInputBytes / ebb::dtype_info(t).block_bytes;
}

void dequantize(benchmark::State& state, ebb::DType t) {
  const ebb::DTypeInfo& info = ebb::dtype_info(t);
  const uint64_t blocks = whole_blocks(t);
  std::vector<std::byte> src(blocks * info.block_bytes);
  ebb::fill_random(t, src, 1, 1.0f);
  std::vector<float> dst(blocks * info.block_elems);
  for (auto _ : state) {
    ebb::dequantize_to_f32(t, src.data(), dst.data(), dst.size());
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * dst.size() * sizeof(float)));
}

void fill(benchmark::State& state, ebb::DType t) {
  std::vector<std::byte> dst(whole_blocks(t) * ebb::dtype_info(t).block_bytes);
  uint64_t seed = 0;
  for (auto _ : state) {
    ebb::fill_random(t, dst, ++seed, 1.0f);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * dst.size()));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 0; i < ebb::kDTypeCount; ++i) {
    const auto t = static_cast<ebb::DType>(i);
    const std::string name(ebb::dtype_name(t));
    benchmark::RegisterBenchmark(("dequantize/" + name).c_str(), dequantize, t)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("fill_random/" + name).c_str(), fill, t)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
