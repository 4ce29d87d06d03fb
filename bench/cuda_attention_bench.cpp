// GPU attention throughput at the shapes the supported models use, as a table: per shape and
// dtype, the median time of one call (cudaEvent timing after warm-up) and TFLOP/s counting
// 4·B·H·Lq·Lkv·D flops per call, also as a share of 787 TFLOP/s (bf16 dense GEMM measured on the
// H100), with the launch plan cuda_attention chose. Under each shape: how that plan launches
// (blocks, residency, registers, spills) and the bf16 time of every plan, so that one run
// shows whether the choice was the best. Inputs are [B, L, H, D], as projections produce them.
// Usage:
//   cuda_attention_bench [head_dim]   (only that head dimension when given)
// Prints why and exits 0 when built without CUDA or when no device is usable.
#include <cstdio>

#ifndef EBB_HAVE_CUDA

int main() {
  std::printf("cuda_attention_bench: built without CUDA; nothing to measure\n");
  return 0;
}

#else

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "tensor/float_convert.h"

namespace {

using ebb::DType;

constexpr double kGemmPeakTflops = 787.0;

void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(err));
}

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

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) { cuda_check(cudaMalloc(&ptr_, bytes), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
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

float elapsed_ms(const ebb::CudaAttentionArgs& args,
                 const std::optional<ebb::CudaAttentionPlan>& plan, cudaStream_t stream,
                 int calls) {
  cudaEvent_t start, stop;
  cuda_check(cudaEventCreate(&start), "cudaEventCreate");
  cuda_check(cudaEventCreate(&stop), "cudaEventCreate");
  cuda_check(cudaEventRecord(start, stream), "cudaEventRecord");
  for (int i = 0; i < calls; ++i) {
    if (plan)
      ebb::cuda_attention(args, *plan, stream);
    else
      ebb::cuda_attention(args, stream);
  }
  cuda_check(cudaEventRecord(stop, stream), "cudaEventRecord");
  cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms;
}

// Inputs of one shape on the device, filled with random values.
class Problem {
 public:
  Problem(const Shape& s, DType t)
      : q_elems_(size_t(s.batch * s.q_len * s.heads * s.head_dim)),
        kv_elems_(size_t(s.batch * s.kv_len * s.heads * s.head_dim)),
        q_(q_elems_ * 2),
        k_(kv_elems_ * 2),
        v_(kv_elems_ * 2),
        out_(q_elems_ * 2) {
    fill_random(q_, q_elems_, t, 8.0f, 1);
    fill_random(k_, kv_elems_, t, 1.0f, 2);
    fill_random(v_, kv_elems_, t, 1.0f, 3);
    args_.dtype = t;
    args_.batch = s.batch;
    args_.heads = s.heads;
    args_.q_len = s.q_len;
    args_.kv_len = s.kv_len;
    args_.head_dim = s.head_dim;
    args_.q = q_.get();
    args_.q_strides = ebb::cpu::blhd_strides(s.heads, s.q_len, s.head_dim);
    args_.k = k_.get();
    args_.k_strides = ebb::cpu::blhd_strides(s.heads, s.kv_len, s.head_dim);
    args_.v = v_.get();
    args_.v_strides = args_.k_strides;
    args_.out = out_.get();
    args_.out_strides = args_.q_strides;
  }
  const ebb::CudaAttentionArgs& args() const { return args_; }

 private:
  size_t q_elems_, kv_elems_;
  DeviceBuffer q_, k_, v_, out_;
  ebb::CudaAttentionArgs args_;
};

// Median milliseconds per call over `rounds` rounds of about `round_ms` each, after warm-up.
double measure_ms(const Problem& p, const std::optional<ebb::CudaAttentionPlan>& plan,
                  cudaStream_t stream, int rounds, float round_ms) {
  const float warm = elapsed_ms(p.args(), plan, stream, 3) / 3;
  const int calls = std::clamp(static_cast<int>(round_ms / std::max(warm, 1e-3f)), 3, 2000);
  std::vector<double> times;
  for (int r = 0; r < rounds; ++r)
    times.push_back(elapsed_ms(p.args(), plan, stream, calls) / calls);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::string plan_name(const ebb::CudaAttentionPlan& p) {
  return fmt::format("{}x{}", p.warp_rows, p.block_warps);
}

double tflops(const Shape& s, double ms) {
  return 4.0 * s.batch * s.heads * s.q_len * s.kv_len * s.head_dim / (ms * 1e-3) * 1e-12;
}

// The default plan's launch, then the bf16 time of every plan in shorter rounds (the default
// again, so that all are measured alike).
void print_plans(const Shape& s, int multiprocessors, cudaStream_t stream) {
  const Problem p(s, DType::BF16);
  const ebb::CudaAttentionPlan chosen = ebb::cuda_attention_default_plan(p.args(), multiprocessors);
  std::printf("    default %s: %s\n", plan_name(chosen).c_str(),
              ebb::cuda_attention_describe(p.args(), chosen).c_str());
  std::string line = "    bf16 ms by plan:";
  std::string best;
  double best_ms = 0;
  for (const ebb::CudaAttentionPlan& plan : ebb::cuda_attention_plans(s.head_dim)) {
    const double ms = measure_ms(p, plan, stream, 3, 30.0f);
    const bool is_default =
        plan.warp_rows == chosen.warp_rows && plan.block_warps == chosen.block_warps;
    line += fmt::format(" {}{} {:.4f}", plan_name(plan), is_default ? "*" : "", ms);
    if (best.empty() || ms < best_ms) {
      best_ms = ms;
      best = plan_name(plan);
    }
  }
  std::printf("%s\n    best %s, %.1f%% of peak\n", line.c_str(), best.c_str(),
              100.0 * tflops(s, best_ms) / kGemmPeakTflops);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t only_dim = argc > 1 ? std::atoll(argv[1]) : 0;
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
    std::printf("device: %s, %d SMs; [B, L, H, D] inputs; %% of %.0f TFLOP/s\n", prop.name,
                prop.multiProcessorCount, kGemmPeakTflops);
    std::printf("plans: rows per warp x warps per block; * marks the default\n");
    std::printf("%-16s %5s %5s %6s %6s %4s %-5s %10s %8s %6s %-5s\n", "shape", "batch", "heads",
                "q_len", "kv_len", "dim", "dtype", "ms", "TFLOP/s", "%peak", "plan");
    cudaStream_t stream;
    cuda_check(cudaStreamCreate(&stream), "cudaStreamCreate");
    for (const Shape& s : kShapes) {
      if (only_dim != 0 && s.head_dim != only_dim) continue;
      for (const DType t : {DType::F16, DType::BF16}) {
        const Problem p(s, t);
        const double ms = measure_ms(p, std::nullopt, stream, 7, 100.0f);
        const std::string plan =
            plan_name(ebb::cuda_attention_default_plan(p.args(), prop.multiProcessorCount));
        std::printf("%-16s %5lld %5lld %6lld %6lld %4lld %-5s %10.4f %8.1f %6.1f %-5s\n", s.name,
                    (long long)s.batch, (long long)s.heads, (long long)s.q_len, (long long)s.kv_len,
                    (long long)s.head_dim, t == DType::BF16 ? "bf16" : "f16", ms, tflops(s, ms),
                    100.0 * tflops(s, ms) / kGemmPeakTflops, plan.c_str());
      }
      print_plans(s, prop.multiProcessorCount, stream);
      std::fflush(stdout);
    }
    cudaStreamDestroy(stream);
  } catch (const std::exception& e) {
    std::printf("cuda_attention_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

#endif
