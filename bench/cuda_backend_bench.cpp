// Throughput of the CUDA backend's heavy paths, as a table (median of timed repetitions after a
// warm-up, cudaEvent timing on the backend's streams):
//   - bf16 GEMM 8192³ through linear(), TFLOP/s and share of 787 TFLOP/s (measured on the H100);
//   - conv2d 3x3 f16 at the UNet's 320→320 @128² and the VAE's 512→512 @256², TFLOP/s, through
//     the default path (the implicit-GEMM kernel where its rule picks it, else im2col + GEMM),
//     im2col + GEMM alone and cuDNN (when it loads); and every path, plus the implicit-GEMM
//     kernel with each of its tile shapes, at every 3x3 stride-1 shape of the SD1.5 and SDXL
//     UNets and the VAE decoder;
//   - host-to-device uploads of 256 MiB blocks on the copy stream, pinned and pageable, GB/s,
//     and what bounds the pageable rate (huge pages, copy size, pinned staging, host memcpy);
//   - pinned uploads on the copy stream while GEMMs run on the compute stream: both rates.
// Prints why and exits 0 when built without CUDA or when no device is usable.
#include <cstdio>

#ifndef EBB_HAVE_CUDA

int main() {
  std::printf("cuda_backend_bench: built without CUDA; nothing to measure\n");
  return 0;
}

#else

#include <cuda_runtime_api.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cudnn_conv.h"
#include "backend/cuda/im2col.h"
#include "backend/cuda/kernels/conv3x3.h"
#include "core/error.h"

namespace {

using namespace ebb;

constexpr double kGemmPeakTflops = 787.0;
constexpr uint64_t kBlockBytes = uint64_t(256) << 20;

// Seconds between two events recorded around `work` on `stream`, median of `reps`.
double median_seconds(cudaStream_t stream, int reps, const std::function<void()>& work) {
  cudaEvent_t start, stop;
  cuda::check(cudaEventCreate(&start), "cudaEventCreate");
  cuda::check(cudaEventCreate(&stop), "cudaEventCreate");
  work();  // warm-up: plans, arena blocks
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    cuda::check(cudaEventRecord(start, stream), "cudaEventRecord");
    work();
    cuda::check(cudaEventRecord(stop, stream), "cudaEventRecord");
    cuda::check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms / 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// A device tensor of random values in [-1, 1]: constant data would draw less power and let the
// GPU clock higher than real weights do.
Tensor filled(CudaBackend& gpu, const Shape& shape, DType t, MemoryTag tag) {
  Tensor x = gpu.empty(shape, t, tag, "bench");
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(x.numel()));
  for (float& v : values) v = dist(rng);
  gpu.write_floats(x, values);
  return x;
}

void gemm(CudaBackend& gpu) {
  const int64_t n = 8192;
  const Tensor x = filled(gpu, {n, n}, DType::BF16, MemoryTag::Activations);
  const Tensor w = filled(gpu, {n, n}, DType::BF16, MemoryTag::Weights);
  const double s = median_seconds(gpu.stream(), 20, [&] { gpu.linear(x, w, {}); });
  const double tflops = 2.0 * n * n * n / s / 1e12;
  std::printf("bf16 GEMM 8192^3 (linear)          %8.3f ms  %6.1f TFLOP/s  %5.1f%% of %.0f\n",
              s * 1e3, tflops, 100 * tflops / kGemmPeakTflops, kGemmPeakTflops);
}

// `path` names how `gpu` runs conv2d; the im2col path's two halves are timed alone too.
void conv(CudaBackend& gpu, const std::string& path, int64_t channels, int64_t size) {
  const Tensor x = filled(gpu, {1, channels, size, size}, DType::F16, MemoryTag::Activations);
  const Tensor w = filled(gpu, {channels, channels, 3, 3}, DType::F16, MemoryTag::Weights);
  const Tensor b = filled(gpu, {channels}, DType::F16, MemoryTag::Weights);
  const auto g = Conv2dGeometry::uniform(1, 1);
  const double s = median_seconds(gpu.stream(), 20, [&] { gpu.conv2d(x, w, b, g); });
  const double unbiased = median_seconds(gpu.stream(), 20, [&] { gpu.conv2d(x, w, {}, g); });
  const double flops = 2.0 * channels * channels * 9 * size * size;
  std::printf(
      "f16 conv2d 3x3 %4lld->%-4lld @%4lld^2 %-7s %8.3f ms  %6.1f TFLOP/s  (without bias %.3f "
      "ms)\n",
      static_cast<long long>(channels), static_cast<long long>(channels),
      static_cast<long long>(size), path.c_str(), s * 1e3, flops / s / 1e12, unbiased * 1e3);
  if (path != "im2col") return;
  // The two halves of im2col + GEMM alone: the patch gathering and the product over the patches.
  const int64_t k = channels * 9, pixels = size * size;
  const Tensor columns = gpu.empty({k, pixels}, DType::F16, MemoryTag::Scratch, "bench");
  cuda::Im2colShape shape{channels, size, size, 3, 3, size, size, 1, 1, 1};
  const double gather = median_seconds(gpu.stream(), 20, [&] {
    cuda::im2col(DType::F16, x.bytes(), shape, 0, pixels, columns.mutable_bytes(), gpu.stream());
  });
  const Tensor patches = columns.reshape({pixels, k});  // the bytes a GEMM reads; layout aside
  const double product = median_seconds(gpu.stream(), 20, [&] {
    gpu.linear(patches, w.reshape({channels, k}), {});
  });
  std::printf("    im2col %.3f ms, GEMM of its size %.3f ms\n", gather * 1e3, product * 1e3);
}

// Seconds of one f16 conv2d 3x3 (stride 1, padding 1, with bias) of `in` channels to `out` at
// batch x size².
double conv_seconds(CudaBackend& gpu, int64_t batch, int64_t in, int64_t out, int64_t size) {
  const Tensor x = filled(gpu, {batch, in, size, size}, DType::F16, MemoryTag::Activations);
  const Tensor w = filled(gpu, {out, in, 3, 3}, DType::F16, MemoryTag::Weights);
  const Tensor b = filled(gpu, {out}, DType::F16, MemoryTag::Weights);
  return median_seconds(gpu.stream(), 20,
                        [&] { gpu.conv2d(x, w, b, Conv2dGeometry::uniform(1, 1)); });
}

// Prints the implicit-GEMM kernel's time at `s` with every tile shape forced, the plan's own
// choice starred.
void conv_tilings(CudaBackend& gpu, const cuda::Conv3x3Shape& s, const Tensor& x, const Tensor& w,
                  const Tensor& b) {
  const uint64_t scratch = CudaBackendOptions{}.max_im2col_bytes;
  const int chosen = cuda::conv3x3_plan(s, 2, scratch).tiling;
  for (int tiling = 0; tiling < cuda::conv3x3_tilings(); ++tiling) {
    const cuda::Conv3x3Plan plan = cuda::conv3x3_plan(s, 2, scratch, tiling);
    if (plan.band_rows == 0) {
      std::printf("  -");
      continue;
    }
    const Tensor shifted = gpu.empty({plan.shifted_elems}, DType::F16, MemoryTag::Scratch, "bench");
    const Tensor partials = gpu.empty({std::max<int64_t>(plan.partial_floats, 1)}, DType::F32,
                                      MemoryTag::Scratch, "bench");
    const Tensor out = gpu.empty({s.batch, s.outputs, s.height, s.width}, DType::F16,
                                 MemoryTag::Activations, "bench");
    cuda::Conv3x3Args a;
    a.shape = s;
    a.x = x.bytes();
    a.w = w.bytes();
    a.bias = b.bytes();
    a.out = out.mutable_bytes();
    a.shifted = shifted.mutable_bytes();
    a.partials = reinterpret_cast<float*>(partials.mutable_bytes());
    const double t =
        median_seconds(gpu.stream(), 20, [&] { cuda::conv3x3(plan, a, gpu.stream()); });
    std::printf("  %d%s%.3f", tiling, tiling == chosen ? "*" : ":", t * 1e3);
  }
}

// The 3x3 stride-1 convolutions of the SD1.5 UNet at 512² and 1024² and the SDXL UNet at 1024²
// (batch 2: CFG; the up blocks' resnets take the skip connections concatenated) and of the VAE
// decoder at 512² and 1024², through every path; cuDNN's column only when it loads.
void conv_shapes(CudaBackend& fast, CudaBackend& im2col, CudaBackend* cudnn) {
  struct Shape3x3 {
    const char* model;
    int64_t batch, in, out, size;
  };
  const Shape3x3 shapes[] = {
      {"UNet", 2, 320, 320, 64},   {"UNet", 2, 640, 320, 64},   {"UNet", 2, 960, 320, 64},
      {"UNet", 2, 320, 640, 32},   {"UNet", 2, 640, 640, 32},   {"UNet", 2, 960, 640, 32},
      {"UNet", 2, 1280, 640, 32},  {"UNet", 2, 1920, 640, 32},  {"UNet", 2, 640, 1280, 16},
      {"UNet", 2, 1280, 1280, 16}, {"UNet", 2, 1920, 1280, 16}, {"UNet", 2, 2560, 1280, 16},
      {"UNet", 2, 1280, 1280, 8},  {"UNet", 2, 2560, 1280, 8},  {"UNet", 2, 320, 320, 128},
      {"UNet", 2, 640, 320, 128},  {"UNet", 2, 960, 320, 128},  {"UNet", 2, 640, 640, 128},
      {"UNet", 2, 320, 640, 64},   {"UNet", 2, 640, 640, 64},   {"UNet", 2, 960, 640, 64},
      {"UNet", 2, 1280, 640, 64},  {"UNet", 2, 1920, 640, 64},  {"UNet", 2, 640, 1280, 32},
      {"UNet", 2, 1280, 1280, 32}, {"UNet", 2, 1920, 1280, 32}, {"UNet", 2, 2560, 1280, 32},
      {"UNet", 2, 1280, 1280, 64}, {"VAE", 1, 512, 512, 64},    {"VAE", 1, 512, 512, 128},
      {"VAE", 1, 512, 512, 256},   {"VAE", 1, 512, 256, 256},   {"VAE", 1, 256, 256, 256},
      {"VAE", 1, 256, 256, 512},   {"VAE", 1, 256, 128, 512},   {"VAE", 1, 128, 128, 512},
      {"VAE", 1, 512, 512, 512},   {"VAE", 1, 512, 256, 512},   {"VAE", 1, 256, 256, 1024},
      {"VAE", 1, 256, 128, 1024},  {"VAE", 1, 128, 128, 1024}};
  std::printf(
      "f16 conv2d 3x3 with bias        default ms  TFLOP/s  im2col ms  TFLOP/s  speed-up%s  "
      "implicit-GEMM kernel by tiling, ms (* the plan's)\n",
      cudnn ? "  cuDNN ms" : "");
  double total_default = 0, total_im2col = 0;
  for (const Shape3x3& c : shapes) {
    const double flops = 2.0 * c.batch * c.out * c.in * 9 * c.size * c.size;
    const Tensor x =
        filled(fast, {c.batch, c.in, c.size, c.size}, DType::F16, MemoryTag::Activations);
    const Tensor w = filled(fast, {c.out, c.in, 3, 3}, DType::F16, MemoryTag::Weights);
    const Tensor bias = filled(fast, {c.out}, DType::F16, MemoryTag::Weights);
    const double a = median_seconds(
        fast.stream(), 20, [&] { fast.conv2d(x, w, bias, Conv2dGeometry::uniform(1, 1)); });
    const double b = conv_seconds(im2col, c.batch, c.in, c.out, c.size);
    total_default += a;
    total_im2col += b;
    std::printf("  %-4s %lldx%4lld->%-4lld @%4lld^2 %9.3f  %7.1f  %9.3f  %7.1f  %7.2fx", c.model,
                static_cast<long long>(c.batch), static_cast<long long>(c.in),
                static_cast<long long>(c.out), static_cast<long long>(c.size), a * 1e3,
                flops / a / 1e12, b * 1e3, flops / b / 1e12, b / a);
    if (cudnn) std::printf("  %8.3f", conv_seconds(*cudnn, c.batch, c.in, c.out, c.size) * 1e3);
    conv_tilings(fast, {c.batch, c.in, c.size, c.size, c.out}, x, w, bias);
    std::printf("\n");
  }
  std::printf("  all shapes once: default %.3f ms, im2col %.3f ms\n", total_default * 1e3,
              total_im2col * 1e3);
}

// GB/s of `blocks` uploads of 256 MiB from `src` on the copy stream.
double upload_rate(CudaBackend& gpu, const Tensor& dst, const void* src, int blocks) {
  const double s = median_seconds(gpu.copy_stream().stream(), 5, [&] {
    for (int i = 0; i < blocks; ++i)
      gpu.copy_stream().upload(dst.mutable_bytes(), src, kBlockBytes).synchronize();
  });
  return blocks * double(kBlockBytes) / s / 1e9;
}

// What bounds uploads from pageable memory: the same bytes from transparent huge pages, in
// smaller copies, through Ebb's own pinned staging (CudaBackend::upload_staged, as the weight
// store uploads), and the host copy into pinned memory alone.
void pageable_variants(CudaBackend& gpu, const Tensor& dst, const std::byte* pageable,
                       std::byte* pinned) {
  constexpr uint64_t kHugePage = uint64_t(2) << 20;
  std::unique_ptr<std::byte, decltype(&std::free)> huge(
      static_cast<std::byte*>(std::aligned_alloc(kHugePage, kBlockBytes)), &std::free);
  if (!huge || madvise(huge.get(), kBlockBytes, MADV_HUGEPAGE) != 0)
    std::printf("H2D pageable, huge pages: madvise(MADV_HUGEPAGE) refused\n");
  else {
    std::fill_n(huge.get(), kBlockBytes, std::byte{1});
    std::printf("H2D 256 MiB pageable, MADV_HUGEPAGE   %8.1f GB/s\n",
                upload_rate(gpu, dst, huge.get(), 4));
  }
  for (uint64_t chunk : {uint64_t(2) << 20, uint64_t(16) << 20}) {
    const double s = median_seconds(gpu.copy_stream().stream(), 5, [&] {
      for (uint64_t at = 0; at < kBlockBytes; at += chunk)
        gpu.copy_stream().upload(dst.mutable_bytes() + at, pageable + at, chunk);
      cuda::check(cudaStreamSynchronize(gpu.copy_stream().stream()), "cudaStreamSynchronize");
    });
    std::printf("H2D 256 MiB pageable in %2llu MiB copies %8.1f GB/s\n",
                static_cast<unsigned long long>(chunk >> 20), double(kBlockBytes) / s / 1e9);
  }
  for (const auto& [block, in_flight] :
       {std::pair{uint64_t(16) << 20, 4}, std::pair{uint64_t(32) << 20, 2},
        std::pair{uint64_t(64) << 20, 4}}) {
    const double s = median_seconds(gpu.copy_stream().stream(), 5, [&] {
      gpu.order_uploads_after_compute();
      std::deque<CopyEvent> queued;
      gpu.upload_staged(dst.mutable_bytes(), {pageable, kBlockBytes}, block, in_flight, queued);
      queued.clear();  // waits for every copy
    });
    std::printf("H2D 256 MiB pageable staged, %2llu MiB x %d %8.1f GB/s\n",
                static_cast<unsigned long long>(block >> 20), in_flight,
                double(kBlockBytes) / s / 1e9);
  }
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(pinned, pageable, kBlockBytes);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  std::printf("host memcpy 256 MiB pageable -> pinned %8.1f GB/s (one thread)\n",
              double(kBlockBytes) / times[2] / 1e9);
}

void uploads(CudaBackend& gpu) {
  const Tensor dst = gpu.empty({int64_t(kBlockBytes)}, DType::U8, MemoryTag::Weights, "bench");
  std::shared_ptr<Storage> pinned = gpu.pinned_pool().acquire(kBlockBytes);
  std::fill_n(pinned->data(), kBlockBytes, std::byte{1});
  std::vector<std::byte> pageable(kBlockBytes, std::byte{1});
  std::printf("H2D 256 MiB pinned (copy stream)   %8.1f GB/s\n",
              upload_rate(gpu, dst, pinned->data(), 4));
  std::printf("H2D 256 MiB pageable (copy stream) %8.1f GB/s\n",
              upload_rate(gpu, dst, pageable.data(), 4));
  pageable_variants(gpu, dst, pageable.data(), pinned->data());

  // Overlap: 16 pinned uploads on the copy stream while GEMMs run on the compute stream; each
  // rate from its own stream's events, both against its rate alone.
  const int64_t n = 8192;
  const Tensor x = filled(gpu, {n, n}, DType::BF16, MemoryTag::Activations);
  const Tensor w = filled(gpu, {n, n}, DType::BF16, MemoryTag::Weights);
  const int blocks = 16, gemms = 40;
  cudaEvent_t c0, c1, g0, g1;
  for (cudaEvent_t* e : {&c0, &c1, &g0, &g1}) cuda::check(cudaEventCreate(e), "cudaEventCreate");
  gpu.linear(x, w, {});
  gpu.synchronize();
  cuda::check(cudaEventRecord(g0, gpu.stream()), "cudaEventRecord");
  for (int i = 0; i < gemms; ++i) gpu.linear(x, w, {});
  cuda::check(cudaEventRecord(g1, gpu.stream()), "cudaEventRecord");
  cudaStream_t copy = gpu.copy_stream().stream();
  cuda::check(cudaEventRecord(c0, copy), "cudaEventRecord");
  std::vector<CopyEvent> done;
  for (int i = 0; i < blocks; ++i)
    done.push_back(gpu.copy_stream().upload(dst.mutable_bytes(), pinned->data(), kBlockBytes));
  cuda::check(cudaEventRecord(c1, copy), "cudaEventRecord");
  gpu.synchronize();
  cuda::check(cudaEventSynchronize(c1), "cudaEventSynchronize");
  float copy_ms = 0, gemm_ms = 0;
  cuda::check(cudaEventElapsedTime(&copy_ms, c0, c1), "cudaEventElapsedTime");
  cuda::check(cudaEventElapsedTime(&gemm_ms, g0, g1), "cudaEventElapsedTime");
  std::printf(
      "overlap: H2D pinned %6.1f GB/s during GEMMs; GEMMs %6.1f TFLOP/s (%.1f ms, "
      "copies %.1f ms)\n",
      blocks * double(kBlockBytes) / (copy_ms / 1e3) / 1e9,
      gemms * 2.0 * n * n * n / (gemm_ms / 1e3) / 1e12, gemm_ms, copy_ms);
}

}  // namespace

int main() {
  try {
    CudaBackendOptions options;
    options.activation_dtype = DType::BF16;
    CudaBackend gpu(options);
    gemm(gpu);
    CudaBackendOptions half;
    half.activation_dtype = DType::F16;
    CudaBackend fast(half);
    half.implicit_conv = false;
    CudaBackend im2col(half);
    half.use_cudnn = true;
    CudaBackend cudnn(half);
    if (!cudnn.uses_cudnn()) std::printf("conv2d: %s\n", cuda::cudnn_description().c_str());
    const std::pair<CudaBackend*, std::string> paths[] = {
        {&fast, "default"}, {&cudnn, cudnn.uses_cudnn() ? "cuDNN" : "im2col"}, {&im2col, "im2col"}};
    for (const auto& [gpu16, path] : paths) {
      conv(*gpu16, path, 320, 128);
      conv(*gpu16, path, 512, 256);
    }
    conv_shapes(fast, im2col, cudnn.uses_cudnn() ? &cudnn : nullptr);
    uploads(gpu);
  } catch (const std::exception& e) {
    std::printf("cuda_backend_bench: %s\n", e.what());
    return 0;
  }
  return 0;
}

#endif
