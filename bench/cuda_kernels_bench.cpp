// Memory-bound GPU kernels at Stable Diffusion shapes, as a table: per kernel, shape and
// storage type, the median time of one call (cudaEvent timing after warm-up) and the
// effective bandwidth, counting each input read once and each output written once (group and
// layer norm read their input twice, so their effective figure is below what the memory moves).
// Usage: cuda_kernels_bench [kernel] (only kernels whose name starts with it). Prints why and exits
// 0 when built without CUDA or without a device.
#include <cstdio>

#ifndef EBB_HAVE_CUDA

int main(int argc, char** argv) {
  if (argc > 1) g_only = argv[1];
  std::printf("cuda_kernels_bench: built without CUDA; nothing to measure\n");
  return 0;
}

#else

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "backend/cuda/kernels/activations.h"
#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/kernels/norms.h"
#include "backend/cuda/kernels/softmax.h"
#include "cuda_bench_util.h"

namespace {

using ebb::bench::DeviceBuffer;

// Small finite values in every storage type.
void fill_all(std::initializer_list<const DeviceBuffer*> buffers) {
  for (const DeviceBuffer* b : buffers) b->fill(0x3c);
}

template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "f32" : std::is_same_v<T, __half> ? "f16" : "bf16";
}

const char* g_only = "";

bool wanted(const char* kernel) {
  return std::string(kernel).rfind(g_only, 0) == 0;
}

// Measures `call` and prints its line, when the kernel is wanted.
void report(const char* kernel, const std::string& shape, const char* type, double bytes,
            const std::function<void()>& call, cudaStream_t stream) {
  if (!wanted(kernel)) return;
  const double ms = ebb::bench::median_ms(call, stream, 50.0f);
  std::printf("%-22s %-24s %-5s %9.4f %8.0f\n", kernel, shape.c_str(), type, ms,
              bytes / (ms * 1e-3) * 1e-9);
}

struct NchwShape {
  const char* name;
  int64_t n, c, s;
};

// SD1.x at 512 px and SDXL at 1024 px (batch 2: classifier-free guidance), the VAE decoder
// at 512 px (batch 1); 32 groups throughout.
constexpr NchwShape kGroupShapes[] = {
    {"sd1 64x64x320", 2, 320, 64 * 64},     {"sd1 32x32x640", 2, 640, 32 * 32},
    {"sd1 16x16x1280", 2, 1280, 16 * 16},   {"sdxl 128x128x320", 2, 320, 128 * 128},
    {"sdxl 64x64x640", 2, 640, 64 * 64},    {"vae 256x256x512", 1, 512, 256 * 256},
    {"vae 512x512x256", 1, 256, 512 * 512}, {"vae 512x512x128", 1, 128, 512 * 512},
};

template <class T>
void bench_storage(cudaStream_t stream) {
  const char* tn = type_name<T>();
  for (const NchwShape& s : kGroupShapes) {
    const size_t elems = size_t(s.n * s.c * s.s);
    DeviceBuffer x(elems * sizeof(T)), y(elems * sizeof(T)), g(s.c * sizeof(T)), b(s.c * sizeof(T));
    fill_all({&x, &y, &g, &b});
    const double bytes = 2.0 * elems * sizeof(T);
    report(
        "group_norm", s.name, tn, bytes,
        [&] {
          ebb::cuda::group_norm(x.get<T>(), g.get<T>(), b.get<T>(), y.get<T>(), s.n, s.c, s.s, 32,
                                1e-5f, stream);
        },
        stream);
    report(
        "group_norm (NHWC)", s.name, tn, bytes,
        [&] {
          ebb::cuda::group_norm_channels_last(x.get<T>(), g.get<T>(), b.get<T>(), y.get<T>(), s.n,
                                              s.c, s.s, 32, 1e-5f, stream);
        },
        stream);
    report(
        "silu", s.name, tn, bytes,
        [&] { ebb::cuda::silu(x.get<T>(), y.get<T>(), int64_t(elems), stream); }, stream);
    const int64_t sizes[] = {s.n, s.c, s.s}, dense[] = {s.c * s.s, s.s, 1}, bias[] = {0, 1, 0};
    report(
        "add (bias [C,1,1])", s.name, tn, bytes,
        [&] {
          ebb::cuda::elementwise(ebb::cuda::ElementwiseOp::Add, x.get<T>(), dense, g.get<T>(), bias,
                                 y.get<T>(), sizes, 3, stream);
        },
        stream);
    report(
        "add (same shape)", s.name, tn, 1.5 * bytes,
        [&] {
          ebb::cuda::elementwise(ebb::cuda::ElementwiseOp::Add, x.get<T>(), dense, x.get<T>(),
                                 dense, y.get<T>(), sizes, 3, stream);
        },
        stream);
  }
  // Transformer rows: SD1.x 64x64 tokens x 320 (batch 2); attention scores of 4096 keys.
  {
    const int64_t rows = 2 * 4096, d = 320;
    DeviceBuffer x(rows * d * sizeof(T)), y(rows * d * sizeof(T)), g(d * sizeof(T)),
        geglu_in(rows * 2 * 1280 * sizeof(T)), geglu_out(rows * 1280 * sizeof(T));
    fill_all({&x, &y, &g, &geglu_in, &geglu_out});
    report(
        "layer_norm", "8192x320", tn, 2.0 * rows * d * sizeof(T),
        [&] {
          ebb::cuda::layer_norm(x.get<T>(), g.get<T>(), g.get<T>(), y.get<T>(), rows, d, 1e-5f,
                                stream);
        },
        stream);
    report(
        "geglu", "8192x2560->1280", tn, 3.0 * rows * 1280 * sizeof(T),
        [&] {
          ebb::cuda::geglu(geglu_in.get<T>(), geglu_out.get<T>(), rows, 1280, ebb::cuda::Gelu::Erf,
                           stream);
        },
        stream);
  }
  {
    const int64_t rows = 2 * 8 * 1024, cols = 4096;
    DeviceBuffer x(rows * cols * sizeof(T));
    fill_all({&x});
    report(
        "softmax", "16384x4096", tn, 2.0 * rows * cols * sizeof(T),
        [&] { ebb::cuda::softmax(x.get<T>(), x.get<T>(), rows, cols, stream); }, stream);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_only = argv[1];
  int devices = 0;
  const cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess || devices == 0) {
    std::printf("cuda_kernels_bench: no usable CUDA device (%s); nothing to measure\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "none found");
    return 0;
  }
  try {
    cudaDeviceProp prop;
    ebb::bench::cuda_check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    std::printf("%-22s %-24s %-5s %9s %8s\n", "kernel", "shape", "type", "ms", "GB/s");
    cudaStream_t stream;
    ebb::bench::cuda_check(cudaStreamCreate(&stream), "cudaStreamCreate");
    bench_storage<float>(stream);
    bench_storage<__half>(stream);
    bench_storage<__nv_bfloat16>(stream);
    cudaStreamDestroy(stream);
  } catch (const std::exception& e) {
    std::printf("cuda_kernels_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

#endif
