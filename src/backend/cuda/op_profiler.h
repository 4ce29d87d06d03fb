#pragma once
// OpProfiler on a CUDA stream: a pair of events around each outermost op, read when the
// profile is collected, so timing ops costs no host synchronisation while they run. An op's
// time is from its first enqueued work starting to its last finishing on the compute stream
// (uploads it waits for included).
#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "backend/op_profiler.h"

namespace ebb {

class CudaOpProfiler final : public OpProfiler {
 public:
  CudaOpProfiler(int device, cudaStream_t stream) : device_(device), stream_(stream) {}
  ~CudaOpProfiler() override;
  CudaOpProfiler(const CudaOpProfiler&) = delete;
  CudaOpProfiler& operator=(const CudaOpProfiler&) = delete;

  // ebb::Error when recording an event failed since the last collect.
  void collect() override;

 protected:
  void start(std::string key) override;
  void stop() override;

 private:
  struct Pending {
    std::string key;
    cudaEvent_t start = nullptr, stop = nullptr;
  };
  cudaEvent_t take_event();

  int device_;
  cudaStream_t stream_;
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> free_;     // recycled by collect
  cudaError_t failed_ = cudaSuccess;  // stop() runs in destructors and cannot throw
};

}  // namespace ebb
