#include <cuda_runtime_api.h>

#include <utility>

#include "backend/cuda/copy_stream.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_memory.h"

namespace ebb {

CopyEvent::CopyEvent(cudaEvent_t event, std::shared_ptr<Storage> source)
    : event_(event), source_(std::move(source)) {}

CopyEvent::CopyEvent(CopyEvent&& other) noexcept
    : event_(std::exchange(other.event_, nullptr)), source_(std::move(other.source_)) {}

CopyEvent& CopyEvent::operator=(CopyEvent&& other) noexcept {
  if (this != &other) {
    reset();
    event_ = std::exchange(other.event_, nullptr);
    source_ = std::move(other.source_);
  }
  return *this;
}

CopyEvent::~CopyEvent() {
  reset();
}

void CopyEvent::reset() {
  if (!event_) return;
  // A destructor cannot report; a failed wait leaves the error for the next checked call.
  if (source_) cudaEventSynchronize(event_);
  cudaEventDestroy(event_);
  event_ = nullptr;
  source_.reset();
}

bool CopyEvent::done() const {
  if (!event_) return true;
  const cudaError_t status = cudaEventQuery(event_);
  if (status == cudaErrorNotReady) return false;
  cuda::check(status, "cudaEventQuery");
  return true;
}

void CopyEvent::synchronize() const {
  if (event_) cuda::check(cudaEventSynchronize(event_), "cudaEventSynchronize");
}

CopyStream::CopyStream(int device) : device_(device) {
  CudaDeviceScope scope(device_);
  cuda::check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
}

CopyStream::~CopyStream() {
  CudaDeviceScope scope(device_, std::nothrow);
  // A destructor cannot report; pending copies finish before the stream goes.
  cudaStreamSynchronize(stream_);
  cudaStreamDestroy(stream_);
}

CopyEvent CopyStream::upload(void* dst, const void* src, uint64_t bytes,
                             std::shared_ptr<Storage> source) {
  CudaDeviceScope scope(device_);
  cudaEvent_t event = nullptr;
  cuda::check(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  CopyEvent done(event, std::move(source));
  cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_),
              "cudaMemcpyAsync (upload)");
  cuda::check(cudaEventRecord(event, stream_), "cudaEventRecord");
  return done;
}

}  // namespace ebb
