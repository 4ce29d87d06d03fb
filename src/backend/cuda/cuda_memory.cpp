#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_memory.h"

namespace ebb {
namespace {

// An out-of-memory status is an answer (null), not a failure; anything else is an error.
bool exhausted(cudaError_t status, const char* what) {
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clears the error so later calls do not report it again
    return true;
  }
  cuda::check(status, what);
  return false;
}

class CudaMemory final : public DeviceMemory {
 public:
  explicit CudaMemory(int device) : device_(device) {}
  Device device() const override { return Device::cuda(device_); }
  std::byte* allocate(uint64_t bytes) override {
    CudaDeviceScope scope(device_);
    void* p = nullptr;
    if (exhausted(cudaMalloc(&p, bytes), "cudaMalloc")) return nullptr;
    return static_cast<std::byte*>(p);
  }
  // Runs in destructors, so it cannot report. Freeing waits for the device to finish with the
  // block, so no kernel still reads it.
  void release(std::byte* data, uint64_t) override {
    CudaDeviceScope scope(device_, std::nothrow);
    cudaFree(data);
  }

 private:
  int device_;
};

class PinnedMemory final : public DeviceMemory {
 public:
  Device device() const override { return Device::cpu(); }
  std::byte* allocate(uint64_t bytes) override {
    void* p = nullptr;
    if (exhausted(cudaHostAlloc(&p, bytes, cudaHostAllocPortable), "cudaHostAlloc")) return nullptr;
    return static_cast<std::byte*>(p);
  }
  // Runs in destructors, so it cannot report.
  void release(std::byte* data, uint64_t) override { cudaFreeHost(data); }
};

}  // namespace

std::unique_ptr<DeviceMemory> make_cuda_memory(int device) {
  return std::make_unique<CudaMemory>(device);
}

std::unique_ptr<DeviceMemory> make_pinned_memory() {
  return std::make_unique<PinnedMemory>();
}

CudaMemoryInfo cuda_memory_info(int device) {
  CudaDeviceScope scope(device);
  size_t free = 0, total = 0;
  cuda::check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  return {free, total};
}

CudaDeviceScope::CudaDeviceScope(int device) : device_(device) {
  cuda::check(cudaGetDevice(&previous_), "cudaGetDevice");
  if (previous_ != device_) cuda::check(cudaSetDevice(device_), "cudaSetDevice");
}

CudaDeviceScope::CudaDeviceScope(int device, std::nothrow_t) : device_(device) {
  if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = device_;
  if (previous_ != device_) cudaSetDevice(device_);
}

CudaDeviceScope::~CudaDeviceScope() {
  // A destructor cannot throw; restoring a device that was current before cannot fail.
  if (previous_ != device_) cudaSetDevice(previous_);
}

}  // namespace ebb
