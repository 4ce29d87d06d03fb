#include <cuda_runtime.h>
#include <fmt/format.h>

#include "backend/cuda/cuda_devices.h"

namespace ebb {

std::vector<DeviceInfo> cuda_devices(std::string& why_none) {
  std::vector<DeviceInfo> out;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    why_none = fmt::format("CUDA reports no usable device: {}", cudaGetErrorString(err));
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaSetDevice(i) != cudaSuccess || cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess)
      continue;
    out.push_back({fmt::format("cuda{}", i),
                   fmt::format("{} (sm_{}{})", prop.name, prop.major, prop.minor), total_bytes,
                   free_bytes});
  }
  if (out.empty()) why_none = "CUDA found no device";
  return out;
}

}  // namespace ebb
