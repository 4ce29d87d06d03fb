#pragma once
// The weight store's transfer interface on a GPU: weights in the backend's arena (one budget for
// weights and activations), uploads on the copy stream. Sources in page-locked memory (a
// host_buffer(), or a range registered by pin_host()) are copied by DMA directly. Others (a
// mapped file's pages, owned reads) have the whole pages of each large piece registered for the
// copy's duration and copied by DMA too: a host copy from a mapping faults every page in, which
// made uploads several times slower (docs/benchmarks.md). What remains (small pieces, the
// partial pages at a piece's ends, ranges the driver refuses to register) goes through pinned
// staging blocks, copied on the calling thread with a few blocks in flight. Pieces adjacent in
// host and device memory are copied as one.
//
// Fences are CUDA events: an upload waits on the copy stream for the compute event it is given
// (or for all compute enqueued so far), and compute_after() makes the compute stream wait for an
// upload's last copy, so neither the host nor either stream waits for more than it must.
#include <cstdint>
#include <deque>
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
  std::shared_ptr<Storage> host_buffer(uint64_t bytes) override;
  void release_host_buffers() override;
  std::shared_ptr<TransferEvent> compute_fence() override;
  std::shared_ptr<ComputeMark> compute_mark() override;
  std::shared_ptr<TransferEvent> upload(std::vector<UploadPiece> pieces,
                                        std::shared_ptr<TransferEvent> after) override;
  void compute_after(TransferEvent& upload) override;
  void finish_uploads() override;
  // Registers the pages with cudaHostRegister (read-only); when the driver refuses, uploads of
  // those bytes keep going through staging.
  void pin_host(std::span<const std::byte> bytes) override;
  ~CudaTransfer() override;

 private:
  bool pinned(std::span<const std::byte> bytes) const;
  void upload_unpinned(const UploadPiece& piece, std::deque<CopyEvent>& copies);

  CudaBackend& backend_;
  std::vector<std::span<const std::byte>> pinned_;  // page-aligned registered ranges
  uint64_t staging_block_;
  int in_flight_;
};

}  // namespace ebb
