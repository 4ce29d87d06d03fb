// Cold reads of a whole file, the way weights are loaded: DirectReader's three methods against
// buffered pread and a copy out of a mapping. Every iteration starts with the file evicted.
// The file (EBB_BENCH_MB MiB, default 256) goes in EBB_BENCH_DIR, default the working directory.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/direct_reader.h"
#include "io/mapped_file.h"
#include "io/page_cache.h"

namespace {

namespace fs = std::filesystem;

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// Writes the file once, synced so evict_file can drop it.
std::string make_file(uint64_t size) {
  const std::string path = (fs::path(env_or("EBB_BENCH_DIR", ".")) / "direct_read_bench.bin");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) std::abort();
  std::vector<char> block(8 << 20);
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 131);
  for (uint64_t at = 0; at < size; at += block.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), size - at));
    if (::write(fd, block.data(), n) != static_cast<ssize_t>(n)) std::abort();
  }
  fsync(fd);
  ::close(fd);
  return path;
}

template <typename Read>
void cold_reads(benchmark::State& state, const std::string& path, uint64_t size, size_t misalign,
                Read read) {
  std::unique_ptr<std::byte, FreeDeleter> buffer(
      static_cast<std::byte*>(std::aligned_alloc(4096, (size + misalign + 4095) / 4096 * 4096)));
  std::span<std::byte> dst(buffer.get() + misalign, size);
  for (auto _ : state) {
    state.PauseTiming();
    ebb::evict_file(path);
    state.ResumeTiming();
    read(dst);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.counters["resident_after_MiB"] =
      static_cast<double>(ebb::file_resident_bytes(path)) / (1 << 20);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void register_all(const std::string& path, uint64_t size) {
  struct Way {
    const char* name;
    ebb::DirectReadOptions options;
  };
  const Way ways[] = {{"io_uring+O_DIRECT", {true, true, 8u << 20, 4}},
                      {"pread+O_DIRECT", {true, false, 8u << 20, 4}},
                      {"pread+fadvise", {false, false, 8u << 20, 4}}};
  for (const Way& way : ways) {
    for (size_t misalign : {size_t{0}, size_t{1}}) {
      const std::string name =
          std::string("DirectReader/") + way.name + (misalign ? "/unaligned_dst" : "");
      benchmark::RegisterBenchmark(
          name.c_str(),
          [=](benchmark::State& state) {
            ebb::DirectReader reader = ebb::DirectReader::open(path, way.options);
            if (std::string(reader.method()) != way.name) {
              state.SkipWithError((std::string("got ") + reader.method()).c_str());
              return;
            }
            cold_reads(state, path, size, misalign,
                       [&](std::span<std::byte> dst) { reader.read(0, dst); });
          })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RegisterBenchmark("BufferedPread",
                               [=](benchmark::State& state) {
                                 const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                                 cold_reads(state, path, size, 0, [&](std::span<std::byte> dst) {
                                   for (uint64_t at = 0; at < dst.size();) {
                                     const ssize_t n =
                                         pread(fd, dst.data() + at,
                                               std::min<uint64_t>(8 << 20, dst.size() - at),
                                               static_cast<off_t>(at));
                                     if (n <= 0) std::abort();
                                     at += static_cast<uint64_t>(n);
                                   }
                                 });
                                 ::close(fd);
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  // Mapped per iteration: pages this process still maps would survive the eviction.
  benchmark::RegisterBenchmark("MappedCopy/sequential",
                               [=](benchmark::State& state) {
                                 cold_reads(state, path, size, 0, [&](std::span<std::byte> dst) {
                                   const ebb::MappedFile file =
                                       ebb::MappedFile::open(path, ebb::MapMode::ReadOnly);
                                   ebb::advise(file, 0, size, ebb::Hint::Sequential);
                                   std::memcpy(dst.data(), file.bytes().data(), dst.size());
                                 });
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t size = std::stoull(env_or("EBB_BENCH_MB", "256")) << 20;
  const std::string path = make_file(size);
  register_all(path, size);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  fs::remove(path);
  return 0;
}
