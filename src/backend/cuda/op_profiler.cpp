#include "backend/cuda/op_profiler.h"

#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_memory.h"

namespace ebb {

CudaOpProfiler::~CudaOpProfiler() {
  CudaDeviceScope scope(device_, std::nothrow);
  cudaStreamSynchronize(stream_);
  for (const Pending& p : pending_) {
    cudaEventDestroy(p.start);
    cudaEventDestroy(p.stop);
  }
  for (cudaEvent_t e : free_) cudaEventDestroy(e);
}

cudaEvent_t CudaOpProfiler::take_event() {
  if (!free_.empty()) {
    cudaEvent_t e = free_.back();
    free_.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  const cudaError_t status = cudaEventCreate(&e);
  if (status != cudaSuccess && failed_ == cudaSuccess) failed_ = status;
  return e;
}

void CudaOpProfiler::start(std::string key) {
  CudaDeviceScope scope(device_, std::nothrow);
  Pending p{std::move(key), take_event(), take_event()};
  const cudaError_t status = p.start ? cudaEventRecord(p.start, stream_) : cudaErrorInvalidValue;
  if (status != cudaSuccess && failed_ == cudaSuccess) failed_ = status;
  pending_.push_back(std::move(p));
}

void CudaOpProfiler::stop() {
  if (pending_.empty() || pending_.back().stop == nullptr) return;
  CudaDeviceScope scope(device_, std::nothrow);
  const cudaError_t status = cudaEventRecord(pending_.back().stop, stream_);
  if (status != cudaSuccess && failed_ == cudaSuccess) failed_ = status;
}

void CudaOpProfiler::collect() {
  CudaDeviceScope scope(device_);
  const cudaError_t failed = std::exchange(failed_, cudaSuccess);
  std::vector<Pending> done = std::exchange(pending_, {});
  const cudaError_t synced = cudaStreamSynchronize(stream_);
  const bool timed = failed == cudaSuccess && synced == cudaSuccess;
  for (size_t i = 0; i < done.size(); ++i) {
    const Pending& p = done[i];
    float ms = 0;
    if (timed && cudaEventElapsedTime(&ms, p.start, p.stop) == cudaSuccess) add(p.key, ms);
    float idle = 0;
    if (timed && i > 0 && cudaEventElapsedTime(&idle, done[i - 1].stop, p.start) == cudaSuccess &&
        idle > 0)
      add_idle(p.key, idle);
  }
  for (const Pending& p : done)
    for (cudaEvent_t e : {p.start, p.stop})
      if (e != nullptr) free_.push_back(e);
  float span = 0;
  if (!done.empty() && timed &&
      cudaEventElapsedTime(&span, done.front().start, done.back().stop) == cudaSuccess)
    add_span(span);
  cuda::check(failed, "recording profile events");
  cuda::check(synced, "cudaStreamSynchronize (profile)");
}

}  // namespace ebb
