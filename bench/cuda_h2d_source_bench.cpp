// Host → device upload rate on the copy stream by where the host bytes live, the question behind
// the streaming target (docs/benchmarks.md, "H2D rate by source"):
//   - pinned: cudaHostAlloc memory (the pinned pool), what the 53.5 GB/s target was measured on;
//   - file: a MAP_SHARED read-only mapping of a file whose pages are in the page cache,
//     registered with cudaHostRegister(ReadOnly) once, as the weight store pins a streamed
//     component's range (src/backend/cuda/cuda_transfer.cpp);
//   - anonymous memory registered the same way, in 4 KiB pages and in transparent huge pages.
// Each source uploads 1 GiB (4 × 256 MiB) as 256 MiB copies and as SDXL-block-sized pieces
// (32 and 8 MiB), alone and while bf16 GEMMs run on the compute stream.
//
//   cuda_h2d_source_bench [DIR]   (DIR holds the 256 MiB scratch file; default /tmp)
// Prints why and exits 0 when built without CUDA or when no device is usable.
#include <cstdio>

#ifndef EBB_HAVE_CUDA

int main() {
  std::printf("cuda_h2d_source_bench: built without CUDA; nothing to measure\n");
  return 0;
}

#else

#include <cuda_runtime_api.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace {

using namespace ebb;

constexpr uint64_t kSourceBytes = uint64_t(256) << 20;
constexpr int kPasses = 4;  // each measurement uploads the source this many times
constexpr uint64_t kHugePage = uint64_t(2) << 20;

struct Source {
  std::string name;
  const std::byte* data = nullptr;
};

// Anonymous memory, 2 MiB aligned, advised before the first touch so the advice decides the
// page size, then registered read-only like the store's file range.
class AnonymousRegion {
 public:
  explicit AnonymousRegion(bool huge) {
    void* p = mmap(nullptr, kSourceBytes + kHugePage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail("mmap of {} bytes failed", kSourceBytes);
    base_ = static_cast<std::byte*>(p);
    data_ = reinterpret_cast<std::byte*>((reinterpret_cast<uintptr_t>(base_) + kHugePage - 1) /
                                         kHugePage * kHugePage);
    if (madvise(data_, kSourceBytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0)
      std::printf("madvise(%s) refused\n", huge ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE");
    std::memset(data_, 1, kSourceBytes);
    cuda::check(cudaHostRegister(data_, kSourceBytes, cudaHostRegisterReadOnly),
                "cudaHostRegister (anonymous)");
  }
  ~AnonymousRegion() {
    cudaHostUnregister(data_);
    munmap(base_, kSourceBytes + kHugePage);
  }
  AnonymousRegion(const AnonymousRegion&) = delete;
  AnonymousRegion& operator=(const AnonymousRegion&) = delete;
  const std::byte* data() const { return data_; }

 private:
  std::byte* base_ = nullptr;
  std::byte* data_ = nullptr;
};

// A file written, read back through the page cache, and mapped as the store maps model files.
class MappedFileRegion {
 public:
  explicit MappedFileRegion(const std::string& dir) : path_(dir + "/ebb_h2d_source_bench.bin") {
    const int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) fail("cannot create {}", path_);
    std::vector<std::byte> chunk(uint64_t(16) << 20, std::byte{1});
    for (uint64_t at = 0; at < kSourceBytes; at += chunk.size())
      if (write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size()))
        fail("cannot write {}", path_);
    fsync(fd);
    void* p = mmap(nullptr, kSourceBytes, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) fail("cannot map {}", path_);
    data_ = static_cast<std::byte*>(p);
    volatile std::byte sink{};
    for (uint64_t at = 0; at < kSourceBytes; at += 4096) sink = data_[at];  // in the page cache
    (void)sink;
    cuda::check(cudaHostRegister(data_, kSourceBytes, cudaHostRegisterReadOnly),
                "cudaHostRegister (file mapping)");
  }
  ~MappedFileRegion() {
    cudaHostUnregister(data_);
    munmap(data_, kSourceBytes);
    unlink(path_.c_str());
  }
  MappedFileRegion(const MappedFileRegion&) = delete;
  MappedFileRegion& operator=(const MappedFileRegion&) = delete;
  const std::byte* data() const { return data_; }

 private:
  std::string path_;
  std::byte* data_ = nullptr;
};

// GB/s of kPasses × kSourceBytes uploaded from `src` in `piece`-sized copies on the copy
// stream, timed by events on that stream; `during` (may be empty) enqueues compute first.
double upload_rate(CudaBackend& gpu, std::byte* dst, const std::byte* src, uint64_t piece,
                   const std::function<void()>& during) {
  cudaStream_t copy = gpu.copy_stream().stream();
  cudaEvent_t start, stop;
  cuda::check(cudaEventCreate(&start), "cudaEventCreate");
  cuda::check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> rates;
  for (int rep = 0; rep < 4; ++rep) {  // the first is a warm-up
    if (during) during();
    cuda::check(cudaEventRecord(start, copy), "cudaEventRecord");
    for (int pass = 0; pass < kPasses; ++pass)
      for (uint64_t at = 0; at < kSourceBytes; at += piece)
        cuda::check(cudaMemcpyAsync(dst + at, src + at, piece, cudaMemcpyHostToDevice, copy),
                    "cudaMemcpyAsync");
    cuda::check(cudaEventRecord(stop, copy), "cudaEventRecord");
    cuda::check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    gpu.synchronize();
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    if (rep > 0) rates.push_back(kPasses * double(kSourceBytes) / (ms / 1e3) / 1e9);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

void measure(const std::string& dir) {
  CudaBackendOptions options;
  options.activation_dtype = DType::BF16;
  CudaBackend gpu(options);
  struct statfs fs {};
  if (statfs(dir.c_str(), &fs) == 0)
    std::printf("scratch file in %s (statfs f_type 0x%lx)\n", dir.c_str(),
                static_cast<unsigned long>(fs.f_type));
  const Tensor dst = gpu.empty({int64_t(kSourceBytes)}, DType::U8, MemoryTag::Weights, "bench");
  std::byte* device = dst.mutable_bytes();

  std::shared_ptr<Storage> pinned = gpu.pinned_pool().acquire(kSourceBytes);
  std::memset(pinned->data(), 1, kSourceBytes);
  const MappedFileRegion file(dir);
  const AnonymousRegion small_pages(false), huge_pages(true);
  const std::vector<Source> sources{{"pinned (cudaHostAlloc)", pinned->data()},
                                    {"file mapping, registered", file.data()},
                                    {"anonymous 4 KiB, registered", small_pages.data()},
                                    {"anonymous THP, registered", huge_pages.data()}};

  // Enough GEMMs to outlast 1 GiB of copies at any rate above ~20 GB/s.
  const int64_t n = 8192;
  const Tensor x = gpu.empty({n, n}, DType::BF16, MemoryTag::Activations, "bench");
  const Tensor w = gpu.empty({n, n}, DType::BF16, MemoryTag::Weights, "bench");
  cuda::check(cudaMemset(x.mutable_bytes(), 0x3c, x.nbytes()), "cudaMemset");
  cuda::check(cudaMemset(w.mutable_bytes(), 0x3c, w.nbytes()), "cudaMemset");
  gpu.linear(x, w, {});
  gpu.synchronize();
  const auto gemms = [&] {
    for (int i = 0; i < 40; ++i) gpu.linear(x, w, {});
  };

  std::printf("%-30s %12s %12s %12s %14s %14s\n", "source (GB/s)", "256 MiB", "32 MiB", "8 MiB",
              "256 MiB+GEMM", "32 MiB+GEMM");
  for (const Source& s : sources) {
    std::printf("%-30s", s.name.c_str());
    for (uint64_t piece : {kSourceBytes, uint64_t(32) << 20, uint64_t(8) << 20})
      std::printf(" %12.1f", upload_rate(gpu, device, s.data, piece, {}));
    for (uint64_t piece : {kSourceBytes, uint64_t(32) << 20})
      std::printf(" %14.1f", upload_rate(gpu, device, s.data, piece, gemms));
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("cuda_h2d_source_bench: no usable CUDA device; nothing to measure\n");
    return 0;
  }
  try {
    measure(argc > 1 ? argv[1] : "/tmp");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_h2d_source_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

#endif
