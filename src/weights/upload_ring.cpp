#include "weights/upload_ring.h"

#include <algorithm>
#include <exception>

#include "core/error.h"
#include "weights/footprint.h"

namespace ebb {

UploadRing::UploadRing(DeviceTransfer& device, uint64_t bytes, std::string what)
    : device_(device), bytes_(bytes), what_(std::move(what)) {}

UploadRing::~UploadRing() {
  if (!storage_) return;
  // Copies may still be writing into memory that goes back to the arena. A destructor cannot
  // report; after a device fault every later call fails and reports it.
  try {
    device_.finish_uploads();
  } catch (const std::exception&) {
  }
}

std::optional<UploadRing::Claim> UploadRing::claim(uint64_t bytes) {
  const uint64_t size =
      (bytes + kDeviceTensorAlignment - 1) / kDeviceTensorAlignment * kDeviceTensorAlignment;
  if (size > bytes_) return std::nullopt;
  const uint64_t begin = head_ + size <= bytes_ ? head_ : 0;
  const uint64_t end = begin + size;
  const auto overlaps = [&](const Region& r) { return r.begin < end && begin < r.end; };
  if (std::any_of(regions_.begin(), regions_.end(),
                  [&](const Region& r) { return r.occupied && overlaps(r); }))
    return std::nullopt;
  if (!storage_) storage_ = device_.allocate(bytes_, what_ + " (upload ring)");
  // Compute fences complete in the order they were made, so the latest one overwritten covers
  // the others; what is left of a released region outside the claim keeps its own fence.
  std::shared_ptr<TransferEvent> after;
  uint64_t latest = 0;
  std::vector<Region> kept;
  for (Region& r : regions_) {
    if (!overlaps(r)) {
      kept.push_back(std::move(r));
      continue;
    }
    if (r.sequence >= latest) {
      latest = r.sequence;
      after = r.fence;
    }
    if (r.begin < begin) kept.push_back({r.begin, begin, false, r.sequence, r.fence});
    if (end < r.end) kept.push_back({end, r.end, false, r.sequence, r.fence});
  }
  kept.push_back({begin, end, true, 0, nullptr});
  regions_ = std::move(kept);
  head_ = end;
  std::shared_ptr<Storage> parent = storage_;
  auto view =
      std::make_shared<Storage>(parent->data() + begin, size, parent->device(), true, [parent] {});
  return Claim{begin, std::move(view), std::move(after)};
}

void UploadRing::release(uint64_t offset) {
  const auto r = std::find_if(regions_.begin(), regions_.end(), [&](const Region& region) {
    return region.occupied && region.begin == offset;
  });
  if (r == regions_.end())
    fail("{}: no upload-ring region is occupied at offset {}", what_, offset);
  r->occupied = false;
  r->sequence = ++fences_;
  r->fence = device_.compute_fence();
}

}  // namespace ebb
