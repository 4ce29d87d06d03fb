// Opening and indexing a checkpoint with 2,000 tensors (the size of an SDXL single file) with
// the file in the page cache: the fixed cost every command pays before any work.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "io/model_source.h"
#include "io/safetensors_writer.h"

namespace {

std::string write_checkpoint() {
  auto path = std::filesystem::temp_directory_path() / "ebb-bench-2000-tensors.safetensors";
  std::vector<ebb::TensorToWrite> tensors;
  for (int i = 0; i < 2000; ++i)
    tensors.push_back({"model.diffusion_model.output_blocks." + std::to_string(i / 10) +
                           ".1.transformer_blocks.0.attn" + std::to_string(i % 10) + ".weight",
                       ebb::DType::F16,
                       {64, 64},
                       [](std::span<std::byte> dst, uint64_t) {
                         std::fill(dst.begin(), dst.end(), std::byte{0});
                       }});
  ebb::write_safetensors(path.string(), tensors, {}, /*overwrite=*/true);
  return path.string();
}

void BM_OpenAndIndex2000Tensors(benchmark::State& state) {
  static const std::string path = write_checkpoint();
  for (auto _ : state) {
    ebb::ModelSource src = ebb::ModelSource::open({path});
    benchmark::DoNotOptimize(src.tensors().data());
  }
  state.counters["tensors"] = 2000;
}
BENCHMARK(BM_OpenAndIndex2000Tensors)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
