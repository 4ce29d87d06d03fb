#include "backend/simulated_device.h"

#include <cstring>

namespace ebb {

bool HostEvent::done() const {
  std::lock_guard lock(mutex_);
  return done_;
}

void HostEvent::wait() {
  std::unique_lock lock(mutex_);
  finished_.wait(lock, [this] { return done_; });
}

void HostEvent::complete() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  finished_.notify_all();
}

SimulatedDevice::SimulatedDevice(int threads, uint64_t budget)
    : backend_(threads, budget), host_(make_host_memory()), copier_([this] { copy_loop(); }) {}

SimulatedDevice::~SimulatedDevice() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  copier_.join();
}

std::shared_ptr<Storage> SimulatedDevice::allocate(uint64_t bytes, std::string_view what) {
  return backend_.arena().allocate(bytes, MemoryTag::Weights, what);
}

std::shared_ptr<Storage> SimulatedDevice::host_buffer(uint64_t bytes) {
  return host_.allocate(bytes, MemoryTag::Staging, "upload buffer");
}

void SimulatedDevice::release_host_buffers() {
  host_.release_cached();
}

std::shared_ptr<TransferEvent> SimulatedDevice::compute_fence() {
  auto fence = std::make_shared<HostEvent>();
  fence->complete();  // the ops enqueued so far have run
  return fence;
}

std::shared_ptr<TransferEvent> SimulatedDevice::upload(std::vector<UploadPiece> pieces,
                                                       std::shared_ptr<TransferEvent> after) {
  {
    std::lock_guard lock(mutex_);
    ++(after ? fenced_ : unfenced_);
  }
  auto event = std::make_shared<HostEvent>();
  enqueue([this, event, after = std::move(after), pieces = std::move(pieces)]() mutable {
    if (after) after->wait();
    uint64_t bytes = 0;
    for (const UploadPiece& p : pieces) {
      std::memcpy(p.dst, p.src.data(), p.src.size());
      bytes += p.src.size();
    }
    pieces.clear();  // as on a GPU: a landed upload holds no source buffer
    {
      std::lock_guard lock(mutex_);
      uploaded_ += bytes;
    }
    event->complete();
  });
  return event;
}

void SimulatedDevice::enqueue(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void SimulatedDevice::compute_after(TransferEvent& upload) {
  upload.wait();
}

void SimulatedDevice::finish_uploads() {
  // The queue runs in order: this job completes after every earlier one.
  auto drained = std::make_shared<HostEvent>();
  enqueue([drained] { drained->complete(); });
  drained->wait();
}

uint64_t SimulatedDevice::uploaded_bytes() const {
  std::lock_guard lock(mutex_);
  return uploaded_;
}

uint64_t SimulatedDevice::fenced_uploads() const {
  std::lock_guard lock(mutex_);
  return fenced_;
}

uint64_t SimulatedDevice::unfenced_uploads() const {
  std::lock_guard lock(mutex_);
  return unfenced_;
}

void SimulatedDevice::copy_loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, with every queued copy done
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace ebb
