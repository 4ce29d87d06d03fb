#pragma once
// Page-locked host buffers for uploads: an Arena over cudaHostAlloc memory, so staging blocks
// are cached by size class, counted under the staging tag and capped by a budget like any
// other memory. Copies from these buffers run asynchronously on the copy stream.
#include <cstdint>
#include <memory>

#include "backend/arena.h"

namespace ebb {

class PinnedPool {
 public:
  explicit PinnedPool(uint64_t budget = Arena::kUnlimited);

  // A pinned host block of at least `bytes`, back in the pool when the last owner drops it.
  std::shared_ptr<Storage> acquire(uint64_t bytes, std::string_view op = "staging");
  Arena& arena() { return arena_; }

 private:
  Arena arena_;
};

}  // namespace ebb
