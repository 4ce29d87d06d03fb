#include "backend/cuda/cuda_transfer.h"

#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <deque>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_memory.h"
#include "core/error.h"

namespace ebb {
namespace {

// Copies land in order on the copy stream, so the last one's completion is everyone's.
class CudaTransferEvent final : public TransferEvent {
 public:
  explicit CudaTransferEvent(std::deque<CopyEvent> copies) : copies_(std::move(copies)) {}
  bool done() const override { return copies_.empty() || copies_.back().done(); }
  // Once waited for, the copies and what they held (staging blocks, registered pages) go, so a
  // caller may free the source right after.
  void wait() override {
    if (copies_.empty()) return;
    copies_.back().synchronize();
    copies_.clear();
  }
  const CopyEvent* last() const { return copies_.empty() ? nullptr : &copies_.back(); }

 private:
  std::deque<CopyEvent> copies_;  // each keeps its source (staging block, buffer) until done
};

// The compute enqueued up to its making: an event recorded on the compute stream.
class ComputeFence final : public TransferEvent {
 public:
  ComputeFence(int device, cudaStream_t compute) : device_(device) {
    CudaDeviceScope scope(device_);
    cuda::check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate");
    const cudaError_t recorded = cudaEventRecord(event_, compute);
    if (recorded != cudaSuccess) cudaEventDestroy(event_);
    cuda::check(recorded, "cudaEventRecord (compute fence)");
  }
  ~ComputeFence() override {
    CudaDeviceScope scope(device_, std::nothrow);
    cudaEventDestroy(event_);  // a wait already enqueued on it holds what it needs
  }
  ComputeFence(const ComputeFence&) = delete;
  ComputeFence& operator=(const ComputeFence&) = delete;

  bool done() const override {
    const cudaError_t status = cudaEventQuery(event_);
    if (status == cudaErrorNotReady) return false;
    cuda::check(status, "cudaEventQuery");
    return true;
  }
  void wait() override { cuda::check(cudaEventSynchronize(event_), "cudaEventSynchronize"); }
  cudaEvent_t get() const { return event_; }

 private:
  int device_;
  cudaEvent_t event_ = nullptr;
};

// A timing event recorded on the compute stream.
class CudaComputeMark final : public ComputeMark {
 public:
  CudaComputeMark(int device, cudaStream_t compute) : device_(device) {
    CudaDeviceScope scope(device_);
    cuda::check(cudaEventCreate(&event_), "cudaEventCreate (compute mark)");
    const cudaError_t recorded = cudaEventRecord(event_, compute);
    if (recorded != cudaSuccess) cudaEventDestroy(event_);
    cuda::check(recorded, "cudaEventRecord (compute mark)");
  }
  ~CudaComputeMark() override {
    CudaDeviceScope scope(device_, std::nothrow);
    cudaEventDestroy(event_);
  }
  CudaComputeMark(const CudaComputeMark&) = delete;
  CudaComputeMark& operator=(const CudaComputeMark&) = delete;

  double seconds_since(const ComputeMark& earlier) const override {
    const auto* from = dynamic_cast<const CudaComputeMark*>(&earlier);
    if (!from) fail("a compute mark of another device");
    CudaDeviceScope scope(device_);
    cuda::check(cudaEventSynchronize(event_), "cudaEventSynchronize (compute mark)");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, from->event_, event_), "cudaEventElapsedTime");
    return static_cast<double>(ms) / 1e3;
  }

 private:
  int device_;
  cudaEvent_t event_ = nullptr;
};

// Uploads of at least this many whole pages are copied by DMA from the source's own pages,
// registered for the copy's duration, rather than copied through staging on the host.
constexpr uint64_t kRegisterAtLeast = uint64_t(4) << 20;

// The whole pages inside `bytes`, registered for DMA until the returned storage goes (null when
// they are too few or the driver refuses). Only pages inside the piece are taken, so a page it
// shares with a neighbouring piece, or with a pin_host() range, is never registered twice.
std::shared_ptr<Storage> register_pages(std::span<const std::byte> bytes, int device) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto first = reinterpret_cast<uintptr_t>(bytes.data());
  const uintptr_t begin = (first + page - 1) / page * page;
  const uintptr_t end = (first + bytes.size()) / page * page;
  if (end <= begin || end - begin < kRegisterAtLeast) return nullptr;
  auto* start = reinterpret_cast<std::byte*>(begin);
  CudaDeviceScope scope(device);
  if (cudaHostRegister(start, end - begin, cudaHostRegisterReadOnly) != cudaSuccess) {
    (void)cudaGetLastError();  // not fatal: the piece goes through staging
    return nullptr;
  }
  return std::make_shared<Storage>(start, end - begin, Device::cpu(), false, [start, device] {
    CudaDeviceScope unregister_scope(device, std::nothrow);
    (void)cudaHostUnregister(start);
  });
}

// Pieces adjacent on both sides become one copy: a block's tensors usually lie back to back in
// the file and, their sizes being multiples of the device alignment, on the device too, so a
// block moves in a few large DMA transfers instead of one per tensor.
std::vector<UploadPiece> merge_adjacent(std::vector<UploadPiece> pieces) {
  std::vector<UploadPiece> merged;
  for (UploadPiece& p : pieces) {
    if (!merged.empty()) {
      UploadPiece& last = merged.back();
      if (last.src.data() + last.src.size() == p.src.data() &&
          last.dst + last.src.size() == p.dst && last.source == p.source) {
        last.src = {last.src.data(), last.src.size() + p.src.size()};
        continue;
      }
    }
    merged.push_back(std::move(p));
  }
  return merged;
}

}  // namespace

CudaTransfer::CudaTransfer(CudaBackend& backend, uint64_t staging_block, int in_flight)
    : backend_(backend),
      staging_block_(std::max<uint64_t>(staging_block, 64)),
      in_flight_(std::max(in_flight, 1)) {}

std::shared_ptr<Storage> CudaTransfer::allocate(uint64_t bytes, std::string_view what) {
  return backend_.arena().allocate(bytes, MemoryTag::Weights, what);
}

std::shared_ptr<Storage> CudaTransfer::host_buffer(uint64_t bytes) {
  return backend_.pinned_pool().acquire(bytes, "upload buffer");
}

void CudaTransfer::release_host_buffers() {
  backend_.pinned_pool().arena().release_cached();
}

CudaTransfer::~CudaTransfer() {
  CudaDeviceScope scope(backend_.device_index(), std::nothrow);
  // Queued copies may still read the registered pages.
  (void)cudaStreamSynchronize(backend_.copy_stream().stream());
  for (std::span<const std::byte> range : pinned_)
    cudaHostUnregister(const_cast<std::byte*>(range.data()));
}

std::shared_ptr<TransferEvent> CudaTransfer::compute_fence() {
  return std::make_shared<ComputeFence>(backend_.device_index(), backend_.stream());
}

std::shared_ptr<ComputeMark> CudaTransfer::compute_mark() {
  return std::make_shared<CudaComputeMark>(backend_.device_index(), backend_.stream());
}

std::shared_ptr<TransferEvent> CudaTransfer::upload(std::vector<UploadPiece> pieces,
                                                    std::shared_ptr<TransferEvent> after) {
  if (after) {
    const auto* fence = dynamic_cast<const ComputeFence*>(after.get());
    if (!fence) fail("an upload on {} was ordered after an event of another device", name());
    CudaDeviceScope scope(backend_.device_index());
    cuda::check(cudaStreamWaitEvent(backend_.copy_stream().stream(), fence->get(), 0),
                "cudaStreamWaitEvent (upload after compute fence)");
  } else {
    backend_.order_uploads_after_compute();
  }
  std::deque<CopyEvent> copies;
  for (UploadPiece& piece : merge_adjacent(std::move(pieces))) {
    if (piece.source || pinned(piece.src))
      copies.push_back(backend_.copy_stream().upload(piece.dst, piece.src.data(), piece.src.size(),
                                                     std::move(piece.source)));
    else
      upload_unpinned(piece, copies);
  }
  return std::make_shared<CudaTransferEvent>(std::move(copies));
}

void CudaTransfer::upload_unpinned(const UploadPiece& piece, std::deque<CopyEvent>& copies) {
  std::shared_ptr<Storage> pages = register_pages(piece.src, backend_.device_index());
  if (!pages) {
    backend_.upload_staged(piece.dst, piece.src, staging_block_, in_flight_, copies);
    return;
  }
  // The bytes before and after the registered pages go through staging first; the DMA of the
  // pages comes last, so no later staging block of this piece waits for it.
  const auto head = static_cast<uint64_t>(pages->data() - piece.src.data());
  const uint64_t tail = head + pages->bytes();
  backend_.upload_staged(piece.dst, piece.src.first(head), staging_block_, in_flight_, copies);
  backend_.upload_staged(piece.dst + tail, piece.src.subspan(tail), staging_block_, in_flight_,
                         copies);
  std::byte* const src = pages->data();  // before the move below hands the pages over
  const uint64_t bytes = pages->bytes();
  copies.push_back(backend_.copy_stream().upload(piece.dst + head, src, bytes, std::move(pages)));
}

void CudaTransfer::compute_after(TransferEvent& upload) {
  const auto* event = dynamic_cast<const CudaTransferEvent*>(&upload);
  if (!event) fail("compute on {} was ordered after an upload of another device", name());
  if (const CopyEvent* last = event->last()) backend_.wait(*last);
}

void CudaTransfer::finish_uploads() {
  CudaDeviceScope scope(backend_.device_index());
  cuda::check(cudaStreamSynchronize(backend_.copy_stream().stream()),
              "cudaStreamSynchronize (uploads)");
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
