#pragma once
// Host-to-device uploads on a stream of their own, so that the weight store can upload block
// i+1 while block i computes: upload() enqueues a copy and returns an event that completes with
// it; the compute stream waits on that event (CudaBackend::wait) before the first op reading
// the destination. From pinned memory (PinnedPool) the copy overlaps compute; from pageable
// memory CUDA stages it and the call returns only once the source was read.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "tensor/storage.h"

namespace ebb {

// The completion of one upload. It keeps the upload's source alive until the copy is done:
// dropping an event whose copy still runs waits for that copy.
class CopyEvent {
 public:
  CopyEvent() = default;
  CopyEvent(CopyEvent&&) noexcept;
  CopyEvent& operator=(CopyEvent&&) noexcept;
  CopyEvent(const CopyEvent&) = delete;
  CopyEvent& operator=(const CopyEvent&) = delete;
  ~CopyEvent();

  bool done() const;
  void synchronize() const;
  cudaEvent_t get() const { return event_; }

 private:
  friend class CopyStream;
  CopyEvent(cudaEvent_t event, std::shared_ptr<Storage> source);
  void reset();
  cudaEvent_t event_ = nullptr;
  std::shared_ptr<Storage> source_;
};

class CopyStream {
 public:
  explicit CopyStream(int device);
  ~CopyStream();
  CopyStream(const CopyStream&) = delete;
  CopyStream& operator=(const CopyStream&) = delete;

  // Enqueues `bytes` from host `src` to device `dst`. `source` (may be null) owns `src` and is
  // kept until the copy completes. The caller guarantees no queued kernel still uses `dst`.
  CopyEvent upload(void* dst, const void* src, uint64_t bytes,
                   std::shared_ptr<Storage> source = nullptr);
  cudaStream_t stream() const { return stream_; }

 private:
  int device_;
  cudaStream_t stream_ = nullptr;
};

}  // namespace ebb
