#include "weights/upload_slots.h"

#include <algorithm>
#include <exception>

#include "core/error.h"

namespace ebb {

UploadSlots::UploadSlots(DeviceTransfer& device, int count, uint64_t bytes, std::string what)
    : device_(device), bytes_(bytes), what_(std::move(what)), slots_(std::max(count, 1)) {}

UploadSlots::~UploadSlots() {
  if (std::none_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.storage; })) return;
  // Copies may still be writing into slots whose memory goes back to the arena. A destructor
  // cannot report; after a device fault every later call fails and reports it.
  try {
    device_.finish_uploads();
  } catch (const std::exception&) {
  }
}

std::optional<UploadSlots::Claim> UploadSlots::claim() {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.occupied) continue;
    if (!s.storage)
      s.storage = device_.allocate(bytes_, fmt::format("{} (upload slot {})", what_, i));
    s.occupied = true;
    return Claim{static_cast<int>(i), s.storage, std::move(s.released)};
  }
  return std::nullopt;
}

void UploadSlots::release(int slot) {
  Slot& s = slots_.at(static_cast<size_t>(slot));
  s.released = device_.compute_fence();
  s.occupied = false;
}

}  // namespace ebb
