#pragma once
// A device without a GPU: a CPU backend with its own budgeted arena (the "device memory") and a
// copy thread standing in for the copy stream. Device plans (offload, streaming, partial
// residency, prefetch, planner budgets) run on it in CI exactly as they will on CUDA, and
// compute bit-identically to the CPU backend because it is one.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "backend/device_transfer.h"

namespace ebb {

class SimulatedDevice final : public DeviceTransfer {
 public:
  // budget: bytes of device memory (Arena::kUnlimited for none).
  SimulatedDevice(int threads, uint64_t budget);
  ~SimulatedDevice() override;

  std::string name() const override { return "sim0"; }
  Backend& backend() override { return backend_; }
  std::shared_ptr<Storage> allocate(uint64_t bytes, std::string_view what) override;
  std::shared_ptr<TransferEvent> upload(std::vector<UploadPiece> pieces) override;

  uint64_t uploaded_bytes() const;

 private:
  void copy_loop();

  CpuBackend backend_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  uint64_t uploaded_ = 0;
  std::thread copier_;
};

}  // namespace ebb
