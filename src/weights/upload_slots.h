#pragma once
// Streaming's device buffers: the streamed (non-resident) blocks of a component cycle through
// a fixed set of slots, (prefetch + 1) buffers of its largest block's size, allocated at first
// use and kept until the component's blocks all leave the device. When a block leaves its slot
// the slot records a compute fence (the work enqueued so far, which includes every kernel that
// read the block), and the next upload into the slot waits for that fence only, so block i+1
// uploads while block i computes. Memory straight from the arena carries no such fence, so a
// fresh slot's first upload waits for all compute enqueued before it; fixed slots also keep
// streaming from churning the arena's size classes under a tight budget.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/device_transfer.h"

namespace ebb {

class UploadSlots {
 public:
  // count slots of `bytes` each; `what` names them in an out-of-memory error.
  UploadSlots(DeviceTransfer& device, int count, uint64_t bytes, std::string what);
  // Returns the slots' memory to the arena once the uploads into them landed.
  ~UploadSlots();
  UploadSlots(const UploadSlots&) = delete;
  UploadSlots& operator=(const UploadSlots&) = delete;

  struct Claim {
    int slot;
    std::shared_ptr<Storage> storage;
    std::shared_ptr<TransferEvent> after;  // for the upload into it; null: after all compute
  };
  // A free slot (allocated now if it is new), or none when every slot is occupied.
  std::optional<Claim> claim();
  // The block in `slot` left: its memory is free once the compute enqueued so far has run.
  void release(int slot);

 private:
  struct Slot {
    std::shared_ptr<Storage> storage;
    std::shared_ptr<TransferEvent> released;  // the compute fence of its last occupant
    bool occupied = false;
  };
  DeviceTransfer& device_;
  uint64_t bytes_;
  std::string what_;
  std::vector<Slot> slots_;
};

}  // namespace ebb
