#pragma once
// Where CUDA arenas get their bytes: device memory of one GPU (cudaMalloc) and page-locked host
// memory (cudaHostAlloc) for staging uploads. Both report exhaustion as null so the Arena can
// empty its cache and retry, then name the op, tag and size in its error.
#include <cstdint>
#include <memory>
#include <new>

#include "backend/arena.h"

namespace ebb {

std::unique_ptr<DeviceMemory> make_cuda_memory(int device);
std::unique_ptr<DeviceMemory> make_pinned_memory();

// Free and total bytes of a device now (cudaMemGetInfo), for --max-vram's negative budgets.
struct CudaMemoryInfo {
  uint64_t free = 0, total = 0;
};
CudaMemoryInfo cuda_memory_info(int device);

// Makes `device` current for the calling thread for its lifetime, then restores the previous.
class CudaDeviceScope {
 public:
  explicit CudaDeviceScope(int device);
  // For destructors: failures are ignored (after a device fault every call fails, and the
  // device's memory goes with the process).
  CudaDeviceScope(int device, std::nothrow_t);
  ~CudaDeviceScope();
  CudaDeviceScope(const CudaDeviceScope&) = delete;
  CudaDeviceScope& operator=(const CudaDeviceScope&) = delete;

 private:
  int previous_ = 0, device_ = 0;
};

}  // namespace ebb
