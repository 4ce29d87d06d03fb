#include "weights/stream_order.h"

namespace ebb {

void StreamOrder::acquired(uint32_t block) {
  if (!current_.empty() && current_.back() == block) return;
  if (!current_.empty() && current_.front() == block) {
    previous_ = std::move(current_);
    current_.clear();
  }
  current_.push_back(block);
  if (previous_.empty()) return;
  // Where the previous pass had this acquisition: the position after the last one, else the
  // next place it comes (the pass took another branch), else unknown.
  const size_t n = previous_.size();
  const size_t expected = cursor_ ? (*cursor_ + 1) % n : 0;
  cursor_.reset();
  for (size_t i = 0; i < n; ++i)
    if (previous_[(expected + i) % n] == block) {
      cursor_ = (expected + i) % n;
      return;
    }
}

std::optional<uint32_t> StreamOrder::ahead(size_t k) const {
  if (!cursor_) return std::nullopt;
  return previous_[(*cursor_ + k) % previous_.size()];
}

void StreamOrder::end_stage() {
  if (previous_.empty()) previous_ = std::move(current_);
  current_.clear();
  cursor_.reset();
}

}  // namespace ebb
