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

CudaMemory::CudaMemory(int device) : device_(device) {
  CudaDeviceScope scope(device_);
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device_;
  cuda::check(cudaMemPoolCreate(&pool_, &props), "cudaMemPoolCreate");
  uint64_t keep = UINT64_MAX;
  cudaError_t status = cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep);
  if (status == cudaSuccess) status = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
  if (status != cudaSuccess) cudaMemPoolDestroy(pool_);
  cuda::check(status, "creating the device memory pool's stream");
}

CudaMemory::~CudaMemory() {
  CudaDeviceScope scope(device_, std::nothrow);
  cudaStreamSynchronize(stream_);
  cudaStreamDestroy(stream_);
  cudaMemPoolDestroy(pool_);
}

std::byte* CudaMemory::allocate(uint64_t bytes) {
  CudaDeviceScope scope(device_);
  void* p = nullptr;
  if (exhausted(cudaMallocFromPoolAsync(&p, bytes, pool_, stream_), "cudaMallocFromPoolAsync"))
    return nullptr;
  return static_cast<std::byte*>(p);
}

// Kernels queued on the stream may still read the block: the pool hands it out again only in
// stream order, after them.
void CudaMemory::release(std::byte* data, uint64_t) {
  CudaDeviceScope scope(device_, std::nothrow);
  cudaFreeAsync(data, stream_);
}

// Runs in destructors too; a failure leaves the memory in the pool, which goes with it.
void CudaMemory::trim() {
  CudaDeviceScope scope(device_, std::nothrow);
  // Memory whose release is still queued cannot go back yet.
  if (cudaStreamSynchronize(stream_) == cudaSuccess) cudaMemPoolTrimTo(pool_, 0);
}

uint64_t CudaMemory::reserved() const {
  uint64_t bytes = 0;
  cuda::check(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &bytes),
              "cudaMemPoolGetAttribute");
  return bytes;
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
