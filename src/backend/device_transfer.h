#pragma once
// Host → device weight transfers, as the weight store sees them: device memory for weights and
// asynchronous uploads that complete in order on one copy queue, each with an event. The CUDA
// backend implements this with its pinned pool and copy stream; the simulated device with a
// budgeted host arena and a copy thread, so device plans run (and are tested) without a GPU.
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

class TransferEvent {
 public:
  virtual ~TransferEvent() = default;
  virtual bool done() const = 0;
  // Blocks until the upload landed.
  virtual void wait() = 0;
};

struct UploadPiece {
  std::span<const std::byte> src;  // host bytes, valid until the event completes
  std::byte* dst;                  // device bytes of at least src.size()
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
  // Queues the copies; the event completes when every piece has landed.
  virtual std::shared_ptr<TransferEvent> upload(std::vector<UploadPiece> pieces) = 0;
  // Host bytes that will be uploaded again and again (a streamed component's range of a mapped
  // file). A GPU pins them so those uploads are DMA only; a device that reads host memory at
  // full speed ignores the hint.
  virtual void pin_host(std::span<const std::byte> bytes) { (void)bytes; }
};

}  // namespace ebb
