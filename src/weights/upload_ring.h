#pragma once
// Streaming's device memory: one allocation per streamed component, (prefetch + 1) times its
// largest block, allocated at first use and kept until the component's blocks all leave the
// device, carved per block as a ring. A block claims the bytes at the ring's head (wrapping to
// the start when the tail is too short), so small blocks take little of it and more of them can
// upload ahead of the compute than a fixed slot per block would allow. When a block leaves, its
// region records a compute fence (the work enqueued so far, which includes every kernel that
// read the block); an upload into the region waits only for the latest fence among the released
// regions it overwrites, so block i+1 uploads while block i computes. Memory straight from the
// arena carries no such fence (an upload into it waits for all compute enqueued before it), and
// fixed memory also keeps streaming from churning the arena's size classes under a tight budget.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/device_transfer.h"

namespace ebb {

// The ring's size for a prefetch depth: room for the block computing and `prefetch_depth`
// blocks of the largest size uploading ahead of it (the planner budgets this).
inline uint64_t upload_ring_bytes(int prefetch_depth, uint64_t largest_block) {
  return static_cast<uint64_t>(prefetch_depth + 1) * largest_block;
}

class UploadRing {
 public:
  // A ring of `bytes`; `what` names it in an out-of-memory error.
  UploadRing(DeviceTransfer& device, uint64_t bytes, std::string what);
  // Returns the ring's memory to the arena once the uploads into it landed (blocks still
  // viewing it keep it until they let go).
  ~UploadRing();
  UploadRing(const UploadRing&) = delete;
  UploadRing& operator=(const UploadRing&) = delete;

  struct Claim {
    uint64_t offset;                       // names the region for release()
    std::shared_ptr<Storage> storage;      // a view of the region, keeping the ring's memory
    std::shared_ptr<TransferEvent> after;  // for the upload into it; null: after all compute
  };
  // The region of `bytes` (rounded up to the device's tensor alignment) at the head, the ring's
  // memory allocated now if this is the first claim; none when it overlaps a region still
  // occupied or is larger than the ring.
  std::optional<Claim> claim(uint64_t bytes);
  // The block in the region claimed at `offset` left: its bytes are free once the compute
  // enqueued so far has run.
  void release(uint64_t offset);
  uint64_t bytes() const { return bytes_; }

 private:
  struct Region {
    uint64_t begin, end;
    bool occupied;
    uint64_t sequence;  // released: the order of its fence among the ring's fences
    std::shared_ptr<TransferEvent> fence;
  };
  DeviceTransfer& device_;
  uint64_t bytes_;
  std::string what_;
  std::shared_ptr<Storage> storage_;
  uint64_t head_ = 0;
  uint64_t fences_ = 0;
  std::vector<Region> regions_;  // occupied, and released ones whose fence still matters
};

}  // namespace ebb
