#include "weights/upload_slots.h"

#include <algorithm>

#include "core/error.h"

namespace ebb {

UploadSlots::UploadSlots(DeviceTransfer& device, int count, uint64_t bytes, std::string what)
    : device_(device), bytes_(bytes), what_(std::move(what)), slots_(std::max(count, 1)) {}

UploadSlots::~UploadSlots() {
  // Copies may still be writing into slots whose memory goes back to the arena.
  if (std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.storage; }))
    device_.finish_uploads();
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

void UploadSlots::clear() {
  if (occupied() > 0) fail("{}: upload slots cleared while a block occupies one", what_);
  device_.finish_uploads();
  for (Slot& s : slots_) s = {};
}

int UploadSlots::occupied() const {
  return static_cast<int>(
      std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.occupied; }));
}

}  // namespace ebb
