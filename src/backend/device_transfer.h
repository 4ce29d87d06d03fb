#pragma once
// Host → device weight transfers, as the weight store sees them: device memory for weights and
// asynchronous uploads that complete in order on one copy queue, each with an event. The CUDA
// backend implements this with its pinned pool and copy stream; the simulated device with a
// budgeted host arena and a copy thread, so device plans run (and are tested) without a GPU.
//
// Ordering is explicit in both directions, so that neither queue waits for more than it must:
// an upload into reused memory waits for a compute fence (the last work that read what it
// overwrites), and the compute that reads an upload is ordered after its event.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "tensor/storage.h"

namespace ebb {

// The completion of queued work: an upload, or a compute fence.
class TransferEvent {
 public:
  virtual ~TransferEvent() = default;
  virtual bool done() const = 0;
  // Blocks until the work completed.
  virtual void wait() = 0;
};

// A point in the compute queue, for timing the compute between two points once it ran.
class ComputeMark {
 public:
  virtual ~ComputeMark() = default;
  // Device seconds from `earlier` to this point; waits until the work before this point ran.
  virtual double seconds_since(const ComputeMark& earlier) const = 0;
};

struct UploadPiece {
  std::span<const std::byte> src;  // host bytes, valid until the event completes
  std::byte* dst;                  // device bytes of at least src.size()
  // Set when src lies in a host_buffer(): the upload keeps it until the copy landed, and a GPU
  // copies it by DMA with no staging.
  std::shared_ptr<Storage> source = nullptr;
};

class DeviceTransfer {
 public:
  virtual ~DeviceTransfer() = default;
  // The ledger's name for the device: "cuda0", "sim0".
  virtual std::string name() const = 0;
  // The backend that computes on the device; its arena holds the uploaded weights too, so one
  // budget covers weights and activations.
  virtual Backend& backend() = 0;
  // Device memory for `bytes` of weights; `what` names the block in an out-of-memory error.
  virtual std::shared_ptr<Storage> allocate(uint64_t bytes, std::string_view what) = 0;
  // Host memory the device copies from at full speed (page-locked on a GPU), for owned bytes
  // that are read only to be uploaded. Any thread may call it.
  virtual std::shared_ptr<Storage> host_buffer(uint64_t bytes) = 0;
  // Hands host buffers cached for reuse back to the system (on a GPU they are page-locked and
  // count in the process's resident memory), e.g. once a load's buffers are done with.
  virtual void release_host_buffers() = 0;
  // The compute work enqueued so far, as an event an upload can be ordered after.
  virtual std::shared_ptr<TransferEvent> compute_fence() = 0;
  // Queues the copies, to start once `after` completed: the fence of the last compute that
  // read the memory they overwrite. Without a fence they start after all the compute enqueued
  // so far, as memory fresh from the arena may still be read by queued kernels. The event
  // completes when every piece has landed. Any thread may call it.
  virtual std::shared_ptr<TransferEvent> upload(std::vector<UploadPiece> pieces,
                                                std::shared_ptr<TransferEvent> after) = 0;
  // The compute enqueued from now on reads `upload`'s bytes: a GPU orders this on the device,
  // without blocking the host.
  virtual void compute_after(TransferEvent& upload) = 0;
  // Blocks until every queued upload has landed.
  virtual void finish_uploads() = 0;
  // A mark at the end of the compute enqueued so far; none where compute times say nothing of
  // a device's (the simulated device computes on host threads as ops are called).
  virtual std::shared_ptr<ComputeMark> compute_mark() { return nullptr; }
  // Host bytes that will be uploaded again and again (a streamed component's range of a mapped
  // file). A GPU pins them so those uploads are DMA only; a device that reads host memory at
  // full speed ignores the hint.
  virtual void pin_host(std::span<const std::byte> bytes) { (void)bytes; }
};

}  // namespace ebb
