#pragma once
// Backends by the device names of --backend ("cpu", "cuda0", ...), each made once and shared
// by the components placed on that device.
#include <map>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/cudnn_attention_rule.h"
#include "backend/device_transfer.h"
#include "backend/op_profiler.h"
#include "weights/budget_flags.h"

namespace ebb {

struct BackendOptions {
  int cpu_threads = 0;                 // 0: one per physical core
  VramBudget vram;                     // --max-vram
  DType gpu_activations = DType::F16;  // activation dtype of CUDA backends
  bool allow_tf32 = false;             // F32 products on the TF32 tensor cores
  bool use_cudnn = false;              // conv2d on cuDNN when it loads (--cudnn)
  AttentionKernelChoice attention = AttentionKernelChoice::Auto;  // --attention
};

// CUDA devices present; 0 without a driver or without the CUDA backend built in.
int cuda_device_count();

// How CUDA backends made with `options` compute conv2d: "cuDNN 9.19.0", or im2col + cuBLASLt
// and why ("cuDNN only with --cudnn", "cuDNN not loaded: ...").
std::string cuda_conv2d_path(const BackendOptions& options);

// How CUDA backends made with `options` compute unmasked f16/bf16 attention: on cuDNN where it
// loads and --attention lets it, else on Ebb's flash kernel, and why.
std::string cuda_attention_path(const BackendOptions& options);

// ebb::Error for an unknown device, a CUDA device in a build without CUDA, or a device that is
// not there (the message says why: no driver, no GPU, index out of range).
std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options);

// The weight store's uploads to `backend`'s device: a CudaTransfer for a CUDA backend, nullptr
// for a backend that reads host memory directly (the CPU).
std::unique_ptr<DeviceTransfer> make_device_transfer(Backend& backend);

// A profiler timing `backend`'s ops where they run: CUDA events on a CUDA backend's compute
// stream, the host clock otherwise. Attach it with backend.set_op_observer().
std::unique_ptr<OpProfiler> make_op_profiler(Backend& backend);

class BackendSet {
 public:
  explicit BackendSet(BackendOptions options) : options_(std::move(options)) {}
  Backend& get(const std::string& device);

 private:
  BackendOptions options_;
  std::map<std::string, std::unique_ptr<Backend>> backends_;
};

}  // namespace ebb
