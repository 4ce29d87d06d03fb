// GPU attention throughput at the shapes the supported models use, as a table: per shape and
// dtype, the median time of one call (cudaEvent timing after warm-up) and TFLOP/s counting
// 4·B·H·Lq·Lkv·D flops per call, also as a share of 787 TFLOP/s (bf16 dense GEMM measured on the
// H100). Inputs are [B, L, H, D], as projections produce them. Beside Ebb's flash kernel, cuDNN's
// fused attention (backend/cuda/cudnn_attention.h) where it loads and takes the shape, and which
// of the two the backend's rule picks (cudnn_attention_rule.h). Usage:
//   cuda_attention_bench [head_dim [tiling]]
// head_dim: only that head dimension (0: all); tiling: auto (the default), wide or narrow, to
// time one tiling of each head dimension at every shape.
// Prints why and exits 0 when built without CUDA or when no device is usable.
#include <cstdio>

#ifndef EBB_HAVE_CUDA

int main() {
  std::printf("cuda_attention_bench: built without CUDA; nothing to measure\n");
  return 0;
}

#else

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cudnn_attention.h"
#include "backend/cuda/cudnn_attention_rule.h"
#include "cuda_bench_util.h"
#include "tensor/float_convert.h"

namespace {

using ebb::DType;

constexpr double kGemmPeakTflops = 787.0;

using ebb::bench::cuda_check;
using ebb::bench::DeviceBuffer;

struct Shape {
  const char* name;
  int64_t batch, heads, q_len, kv_len, head_dim;
};

// Batch 2 for the UNets: the two halves of classifier-free guidance.
constexpr Shape kShapes[] = {
    {"sd1 self 512px", 2, 8, 4096, 4096, 40},  {"sd1 self 1024px", 2, 8, 16384, 16384, 40},
    {"sd1 cross", 2, 8, 4096, 77, 40},         {"sd1 self 512px", 2, 8, 1024, 1024, 80},
    {"sd1 self 1024px", 2, 8, 4096, 4096, 80}, {"sd1 cross", 2, 8, 1024, 77, 80},
    {"sd1 self 512px", 2, 8, 256, 256, 160},   {"sd1 self 1024px", 2, 8, 1024, 1024, 160},
    {"sd1 cross", 2, 8, 256, 77, 160},         {"sdxl self", 2, 10, 4096, 4096, 64},
    {"sdxl self", 2, 20, 1024, 1024, 64},      {"sdxl cross", 2, 10, 4096, 77, 64},
    {"sdxl cross 154", 2, 20, 1024, 154, 64},  {"flux joint", 1, 24, 4608, 4608, 128},
    {"vae 512px", 1, 1, 4096, 4096, 512},      {"vae 1024px", 1, 1, 16384, 16384, 512},
};

void fill_random(const DeviceBuffer& dst, size_t elems, DType t, float amplitude, uint64_t seed) {
  std::vector<uint16_t> host(elems);
  uint64_t state = seed;
  for (auto& x : host) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const float u = static_cast<float>(state >> 40) * 0x1p-23f - 1.0f;
    x = t == DType::BF16 ? ebb::f32_to_bf16(amplitude * u) : ebb::f32_to_f16(amplitude * u);
  }
  cuda_check(cudaMemcpy(dst.get(), host.data(), elems * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
}

// One problem's operands on the device and the arguments naming them.
struct Operands {
  size_t q_elems, kv_elems;
  DeviceBuffer q, k, v, out;
  ebb::CudaAttentionArgs args;

  Operands(const Shape& s, DType t, ebb::CudaAttentionTiling tiling)
      : q_elems(size_t(s.batch * s.q_len * s.heads * s.head_dim)),
        kv_elems(size_t(s.batch * s.kv_len * s.heads * s.head_dim)),
        q(q_elems * 2),
        k(kv_elems * 2),
        v(kv_elems * 2),
        out(q_elems * 2) {
    fill_random(q, q_elems, t, 8.0f, 1);
    fill_random(k, kv_elems, t, 1.0f, 2);
    fill_random(v, kv_elems, t, 1.0f, 3);
    args.dtype = t;
    args.batch = s.batch;
    args.heads = s.heads;
    args.q_len = s.q_len;
    args.kv_len = s.kv_len;
    args.head_dim = s.head_dim;
    args.q = q.get();
    args.q_strides = ebb::cpu::blhd_strides(s.heads, s.q_len, s.head_dim);
    args.k = k.get();
    args.k_strides = ebb::cpu::blhd_strides(s.heads, s.kv_len, s.head_dim);
    args.v = v.get();
    args.v_strides = args.k_strides;
    args.out = out.get();
    args.out_strides = args.q_strides;
    args.tiling = tiling;
  }
};

// Median milliseconds per call over 7 rounds of about 100 ms each, after one untimed call (which
// builds cuDNN's graph) and warm-up.
double measure_ms(const std::function<void()>& call, cudaStream_t stream) {
  call();
  cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return ebb::bench::median_ms(call, stream, 100.0f);
}

double tflops(const Shape& s, double ms) {
  return 4.0 * s.batch * s.heads * s.q_len * s.kv_len * s.head_dim / (ms * 1e-3) * 1e-12;
}

struct NamedTiling {
  const char* name;
  ebb::CudaAttentionTiling tiling;
};

constexpr NamedTiling kTilings[] = {
    {"auto", ebb::CudaAttentionTiling::Auto},
    {"wide", ebb::CudaAttentionTiling::Wide},
    {"narrow", ebb::CudaAttentionTiling::Narrow},
};

}  // namespace

int main(int argc, char** argv) {
  const int64_t only_dim = argc > 1 ? std::atoll(argv[1]) : 0;
  const std::string tiling_name = argc > 2 ? argv[2] : "auto";
  const NamedTiling* tiling = nullptr;
  for (const NamedTiling& t : kTilings)
    if (tiling_name == t.name) tiling = &t;
  if (tiling == nullptr) {
    std::printf("cuda_attention_bench: unknown tiling '%s' (auto, wide or narrow)\n",
                tiling_name.c_str());
    return 2;
  }
  int devices = 0;
  const cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess || devices == 0) {
    std::printf("cuda_attention_bench: no usable CUDA device (%s); nothing to measure\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "none found");
    return 0;
  }
  try {
    cudaDeviceProp prop;
    cuda_check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::printf("device: %s, %d SMs; [B, L, H, D] inputs; tiling %s; %% of %.0f TFLOP/s\n",
                prop.name, prop.multiProcessorCount, tiling->name, kGemmPeakTflops);
    // The backend's arena holds cuDNN's workspace; everything runs on its stream.
    ebb::CudaBackendOptions options;
    options.attention = ebb::AttentionKernelChoice::Ebb;
    ebb::CudaBackend backend(options);
    const cudaStream_t stream = backend.stream();
    std::unique_ptr<ebb::cuda::CudnnAttention> cudnn;
    if (ebb::cuda::cudnn_attention_loaded())
      cudnn = std::make_unique<ebb::cuda::CudnnAttention>(backend.arena(), stream);
    std::printf("cuDNN: %s\n", ebb::cuda::cudnn_attention_description().c_str());
    std::printf("%-16s %5s %5s %6s %6s %4s %-5s %9s %8s %6s %9s %8s %6s %5s\n", "shape", "batch",
                "heads", "q_len", "kv_len", "dim", "dtype", "ebb ms", "TFLOP/s", "%peak",
                "cudnn ms", "TFLOP/s", "%peak", "auto");
    for (const Shape& s : kShapes) {
      if (only_dim != 0 && s.head_dim != only_dim) continue;
      const ebb::AttentionProblem problem{s.batch, s.heads, s.q_len, s.kv_len, s.head_dim};
      for (const DType t : {DType::F16, DType::BF16}) {
        Operands o(s, t, tiling->tiling);
        const double ours = measure_ms([&] { ebb::cuda_attention(o.args, stream); }, stream);
        std::printf("%-16s %5lld %5lld %6lld %6lld %4lld %-5s %9.4f %8.1f %6.1f", s.name,
                    (long long)s.batch, (long long)s.heads, (long long)s.q_len, (long long)s.kv_len,
                    (long long)s.head_dim, t == DType::BF16 ? "bf16" : "f16", ours, tflops(s, ours),
                    100.0 * tflops(s, ours) / kGemmPeakTflops);
        bool cudnn_ran = false;
        if (cudnn && ebb::cudnn_attention_supports(problem) && cudnn->run(o.args)) {
          const double theirs = measure_ms([&] { cudnn->run(o.args); }, stream);
          std::printf(" %9.4f %8.1f %6.1f", theirs, tflops(s, theirs),
                      100.0 * tflops(s, theirs) / kGemmPeakTflops);
          cudnn_ran = true;
        } else {
          std::printf(" %9s %8s %6s", "-", "-", "-");
        }
        const bool picks_cudnn =
            cudnn_ran && ebb::wants_cudnn_attention(ebb::AttentionKernelChoice::Auto, problem);
        std::printf(" %5s\n", picks_cudnn ? "cudnn" : "ebb");
      }
    }
  } catch (const std::exception& e) {
    std::printf("cuda_attention_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

#endif
