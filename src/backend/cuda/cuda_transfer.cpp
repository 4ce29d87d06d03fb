#include "backend/cuda/cuda_transfer.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_memory.h"

namespace ebb {
namespace {

// Copies land in order on the copy stream, so the last one's completion is everyone's.
class CudaTransferEvent final : public TransferEvent {
 public:
  explicit CudaTransferEvent(std::deque<CopyEvent> copies) : copies_(std::move(copies)) {}
  bool done() const override { return copies_.empty() || copies_.back().done(); }
  void wait() override {
    if (!copies_.empty()) copies_.back().synchronize();
  }

 private:
  std::deque<CopyEvent> copies_;  // each keeps its staging block until its copy completed
};

}  // namespace

CudaTransfer::CudaTransfer(CudaBackend& backend, uint64_t staging_block, int in_flight)
    : backend_(backend),
      staging_block_(std::max<uint64_t>(staging_block, 64)),
      in_flight_(std::max(in_flight, 1)) {}

std::shared_ptr<Storage> CudaTransfer::allocate(uint64_t bytes, std::string_view what) {
  return backend_.arena().allocate(bytes, MemoryTag::Weights, what);
}

std::shared_ptr<TransferEvent> CudaTransfer::upload(std::vector<UploadPiece> pieces) {
  CudaDeviceScope scope(backend_.device_index());
  cudaEvent_t computed = nullptr;
  cuda::check(cudaEventCreateWithFlags(&computed, cudaEventDisableTiming), "cudaEventCreate");
  cuda::check(cudaEventRecord(computed, backend_.stream()), "cudaEventRecord");
  const cudaError_t waited = cudaStreamWaitEvent(backend_.copy_stream().stream(), computed, 0);
  cudaEventDestroy(computed);  // the wait holds what it needs
  cuda::check(waited, "cudaStreamWaitEvent");

  std::deque<CopyEvent> copies;
  for (const UploadPiece& piece : pieces) {
    for (uint64_t at = 0; at < piece.src.size(); at += staging_block_) {
      const uint64_t n = std::min<uint64_t>(staging_block_, piece.src.size() - at);
      // Keep at most in_flight_ blocks queued: the oldest finished block returns to the pool.
      while (copies.size() >= static_cast<size_t>(in_flight_)) copies.pop_front();
      std::shared_ptr<Storage> staging = backend_.pinned_pool().acquire(n, "upload staging");
      std::byte* const host = staging->data();  // before the move below hands staging over
      std::memcpy(host, piece.src.data() + at, n);
      copies.push_back(backend_.copy_stream().upload(piece.dst + at, host, n, std::move(staging)));
    }
  }
  return std::make_shared<CudaTransferEvent>(std::move(copies));
}

}  // namespace ebb
