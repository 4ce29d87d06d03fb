#pragma once
// The weight store's transfer interface on a GPU: weights in the backend's arena (one budget for
// weights and activations), uploads on the copy stream through pinned staging blocks. Each
// piece is copied into a pinned block on the calling thread and then moved by DMA, a few blocks
// in flight, so the host copy of one block overlaps the transfer of the previous one.
//
// Uploads start only after the compute work enqueued so far (an event on the compute stream):
// device memory the store freed may still be read by queued kernels, and the upload must not
// overwrite it under them. Issued before the current block's ops are enqueued, an upload
// therefore overlaps that block's compute.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/device_transfer.h"

namespace ebb {

class CudaTransfer final : public DeviceTransfer {
 public:
  // staging_block: bytes per pinned block; in_flight: blocks a call keeps queued at once.
  explicit CudaTransfer(CudaBackend& backend, uint64_t staging_block = uint64_t(32) << 20,
                        int in_flight = 4);

  std::string name() const override { return backend_.device().name(); }
  Backend& backend() override { return backend_; }
  std::shared_ptr<Storage> allocate(uint64_t bytes, std::string_view what) override;
  std::shared_ptr<TransferEvent> upload(std::vector<UploadPiece> pieces) override;
  // Registers the pages with cudaHostRegister (read-only); when the driver refuses, uploads of
  // those bytes keep going through staging.
  void pin_host(std::span<const std::byte> bytes) override;
  ~CudaTransfer() override;

 private:
  bool pinned(std::span<const std::byte> bytes) const;

  CudaBackend& backend_;
  std::vector<std::span<const std::byte>> pinned_;  // page-aligned registered ranges
  uint64_t staging_block_;
  int in_flight_;
};

}  // namespace ebb
