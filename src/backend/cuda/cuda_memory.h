#pragma once
// Where CUDA arenas get their bytes: device memory of one GPU and page-locked host memory
// (cudaHostAlloc) for staging uploads. Both report exhaustion as null so the Arena can empty its
// cache and retry, then name the op, tag and size in its error.
//
// Device memory is stream-ordered (cudaMallocFromPoolAsync / cudaFreeAsync on a pool of its
// own, on the compute stream, which it owns so that the stream outlives every block): a block
// the arena releases is free once the compute queued before the release has run, and memory
// taken later reuses it in that order, with no device-wide wait. cudaFree would wait for the
// whole device, so a budget full to the last byte, where the arena releases cached blocks of
// one size class to make room for another, would stall every step. The pool keeps the memory
// released into it (its release threshold is unlimited) until trimmed, so after the first
// steps taking memory asks the driver for nothing.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <new>

#include "backend/arena.h"

namespace ebb {

class CudaMemory final : public DeviceMemory {
 public:
  explicit CudaMemory(int device);
  // Waits for the stream, then gives the pool's memory back.
  ~CudaMemory() override;
  CudaMemory(const CudaMemory&) = delete;
  CudaMemory& operator=(const CudaMemory&) = delete;

  Device device() const override { return Device::cuda(device_); }
  std::byte* allocate(uint64_t bytes) override;
  // Runs in destructors, so it cannot report.
  void release(std::byte* data, uint64_t bytes) override;
  // Hands the pool's unused memory back to the driver, after the stream's queued work. Runs in
  // destructors, so it cannot report.
  void trim() override;

  // The stream blocks are taken and released on: the backend's compute stream.
  cudaStream_t stream() const { return stream_; }
  // Bytes the pool holds from the driver.
  uint64_t reserved() const;

 private:
  int device_;
  cudaMemPool_t pool_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

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
