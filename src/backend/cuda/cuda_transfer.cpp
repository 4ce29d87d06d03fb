#include "backend/cuda/cuda_transfer.h"

#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <deque>

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

CudaTransfer::~CudaTransfer() {
  CudaDeviceScope scope(backend_.device_index(), std::nothrow);
  // Queued copies may still read the registered pages.
  (void)cudaStreamSynchronize(backend_.copy_stream().stream());
  for (std::span<const std::byte> range : pinned_)
    cudaHostUnregister(const_cast<std::byte*>(range.data()));
}

std::shared_ptr<TransferEvent> CudaTransfer::upload(std::vector<UploadPiece> pieces) {
  backend_.order_uploads_after_compute();
  std::deque<CopyEvent> copies;
  for (const UploadPiece& piece : pieces) {
    if (pinned(piece.src))
      copies.push_back(
          backend_.copy_stream().upload(piece.dst, piece.src.data(), piece.src.size()));
    else
      backend_.upload_staged(piece.dst, piece.src, staging_block_, in_flight_, copies);
  }
  return std::make_shared<CudaTransferEvent>(std::move(copies));
}

void CudaTransfer::pin_host(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(bytes.data()) / page * page;
  const auto end =
      (reinterpret_cast<uintptr_t>(bytes.data() + bytes.size()) + page - 1) / page * page;
  auto* start = reinterpret_cast<std::byte*>(begin);
  CudaDeviceScope scope(backend_.device_index());
  if (cudaHostRegister(start, end - begin, cudaHostRegisterReadOnly) != cudaSuccess) {
    (void)cudaGetLastError();  // not fatal: those uploads stay staged
    return;
  }
  pinned_.push_back({start, end - begin});
}

bool CudaTransfer::pinned(std::span<const std::byte> bytes) const {
  for (std::span<const std::byte> range : pinned_)
    if (bytes.data() >= range.data() && bytes.data() + bytes.size() <= range.data() + range.size())
      return true;
  return false;
}

}  // namespace ebb
