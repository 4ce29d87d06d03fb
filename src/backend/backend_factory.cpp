#include "backend/backend_factory.h"

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

#ifdef EBB_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/cuda_memory.h"
#include "backend/cuda/cuda_transfer.h"
#include "backend/cuda/cudnn_attention.h"
#include "backend/cuda/cudnn_conv.h"
#include "backend/cuda/op_profiler.h"
#endif

namespace ebb {

int cuda_device_count() {
#ifdef EBB_HAVE_CUDA
  std::string why;
  return static_cast<int>(cuda_devices(why).size());
#else
  return 0;
#endif
}

std::string cuda_conv2d_path(const BackendOptions& options) {
#ifdef EBB_HAVE_CUDA
  if (!options.use_cudnn)
    return "implicit-GEMM 3x3 kernel where it is faster, else im2col + cuBLASLt (cuDNN only with "
           "--cudnn)";
  if (cuda::cudnn_loaded()) return cuda::cudnn_description();
  return "im2col + cuBLASLt (" + cuda::cudnn_description() + ")";
#else
  (void)options;
  return "none (built without CUDA)";
#endif
}

std::string cuda_attention_path(const BackendOptions& options) {
#ifdef EBB_HAVE_CUDA
  if (options.attention == AttentionKernelChoice::Ebb)
    return "Ebb's flash kernel (--attention ebb)";
  if (!cuda::cudnn_attention_loaded())
    return "Ebb's flash kernel (" + cuda::cudnn_attention_description() + ")";
  return cuda::cudnn_attention_description() +
         (options.attention == AttentionKernelChoice::Cudnn
              ? " wherever it takes the shape (--attention cudnn), else Ebb's flash kernel"
              : " where it is faster, else Ebb's flash kernel");
#else
  (void)options;
  return "none (built without CUDA)";
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options) {
  if (device == "cpu") return std::make_unique<CpuBackend>(options.cpu_threads);
  if (device.rfind("cuda", 0) != 0 || device.size() == 4 ||
      device.find_first_not_of("0123456789", 4) != std::string::npos)
    fail("unknown device '{}' (valid: cpu, cuda0, cuda1, ...)", device);
#ifdef EBB_HAVE_CUDA
  CudaBackendOptions cuda;
  cuda.device = std::stoi(device.substr(4));
  require_cuda_device(cuda.device);
  cuda.activation_dtype = options.gpu_activations;
  cuda.allow_tf32 = options.allow_tf32;
  cuda.use_cudnn = options.use_cudnn;
  cuda.attention = options.attention;
  const uint64_t budget = resolve_budget(options.vram, device, cuda_memory_info(cuda.device).free);
  cuda.budget = budget == 0 ? Arena::kUnlimited : budget;
  return std::make_unique<CudaBackend>(cuda);
#else
  fail(
      "{} needs the CUDA backend, but this ebb was built without it (--backend cpu computes "
      "without a GPU)",
      device);
#endif
}

std::unique_ptr<DeviceTransfer> make_device_transfer(Backend& backend) {
#ifdef EBB_HAVE_CUDA
  if (auto* cuda = dynamic_cast<CudaBackend*>(&backend))
    return std::make_unique<CudaTransfer>(*cuda);
#endif
  (void)backend;
  return nullptr;
}

std::unique_ptr<OpProfiler> make_op_profiler(Backend& backend) {
#ifdef EBB_HAVE_CUDA
  if (auto* cuda = dynamic_cast<CudaBackend*>(&backend))
    return std::make_unique<CudaOpProfiler>(cuda->device_index(), cuda->stream());
#endif
  (void)backend;
  return std::make_unique<HostOpProfiler>();
}

Backend& BackendSet::get(const std::string& device) {
  std::unique_ptr<Backend>& slot = backends_[device];
  if (!slot) slot = make_backend(device, options_);
  return *slot;
}

}  // namespace ebb
