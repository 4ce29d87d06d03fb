#pragma once
// A device without a GPU: a CPU backend with its own budgeted arena (the "device memory") and a
// copy thread standing in for the copy stream. Device plans (offload, streaming, partial
// residency, prefetch, planner budgets) run on it in CI exactly as they will on CUDA, and
// compute bit-identically to the CPU backend because it is one.
//
// Its compute runs on the calling thread and has finished when an op returns, so a compute
// fence is complete when made and ordering compute after an upload waits on the host; the copy
// thread honours an upload's fence before copying, as the copy stream does.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "backend/device_transfer.h"

namespace ebb {

// An event that some thread completes by hand: the copy thread for an upload, a test for a
// fence standing in for compute that still reads the memory.
class HostEvent final : public TransferEvent {
 public:
  bool done() const override;
  void wait() override;
  void complete();

 private:
  mutable std::mutex mutex_;
  std::condition_variable finished_;
  bool done_ = false;
};

class SimulatedDevice final : public DeviceTransfer {
 public:
  // budget: bytes of device memory (Arena::kUnlimited for none).
  SimulatedDevice(int threads, uint64_t budget);
  ~SimulatedDevice() override;

  std::string name() const override { return "sim0"; }
  Backend& backend() override { return backend_; }
  std::shared_ptr<Storage> allocate(uint64_t bytes, std::string_view what) override;
  std::shared_ptr<Storage> host_buffer(uint64_t bytes) override;
  void release_host_buffers() override;
  std::shared_ptr<TransferEvent> compute_fence() override;
  std::shared_ptr<TransferEvent> upload(std::vector<UploadPiece> pieces,
                                        std::shared_ptr<TransferEvent> after) override;
  void compute_after(TransferEvent& upload) override;
  void finish_uploads() override;

  uint64_t uploaded_bytes() const;
  // Uploads queued with a fence (into reused memory) and without one (after all compute).
  uint64_t fenced_uploads() const;
  uint64_t unfenced_uploads() const;
  Arena& host_arena() { return host_; }

 private:
  void enqueue(std::function<void()> job);
  void copy_loop();

  CpuBackend backend_;
  Arena host_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  uint64_t uploaded_ = 0, fenced_ = 0, unfenced_ = 0;
  std::thread copier_;
};

}  // namespace ebb
