#include "backend/cuda/pinned_pool.h"

#include "backend/cuda/cuda_memory.h"

namespace ebb {

PinnedPool::PinnedPool(uint64_t budget) : arena_(make_pinned_memory(), budget) {}

std::shared_ptr<Storage> PinnedPool::acquire(uint64_t bytes, std::string_view op) {
  return arena_.allocate(bytes, MemoryTag::Staging, op);
}

}  // namespace ebb
