#include "backend/cuda/cuda_transfer.h"

#include <algorithm>
#include <deque>

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
  backend_.order_uploads_after_compute();
  std::deque<CopyEvent> copies;
  for (const UploadPiece& piece : pieces)
    backend_.upload_staged(piece.dst, piece.src, staging_block_, in_flight_, copies);
  return std::make_shared<CudaTransferEvent>(std::move(copies));
}

}  // namespace ebb
