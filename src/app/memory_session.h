#pragma once
// What `ebb generate` holds for its memory and device flags: the backends of the devices the
// components run on, the plan made from the flags (by the planner when a device or a budget is
// involved), the device the store uploads to (a GPU, or a simulated one), the weight store, and
// the reporting — the one summary line after each image and the --memory-report file at the end.
#include <cstddef>
#include <memory>

#include "app/device_flags.h"
#include "app/memory_flags.h"
#include "backend/backend.h"
#include "backend/backend_factory.h"
#include "backend/device_transfer.h"
#include "backend/simulated_device.h"
#include "io/model_source.h"
#include "pipeline/txt2img.h"
#include "weights/ledger.h"
#include "weights/memory_report.h"
#include "weights/weight_store.h"

namespace ebb {

class MemorySession {
 public:
  // May turn VAE tiling on in `options` when the plan needs it (and says so on stderr). Fails
  // before anything is loaded when no plan fits the budgets.
  MemorySession(const MemoryFlags& flags, const DeviceFlags& device_flags,
                const ModelSource& source, Txt2ImgOptions& options);

  WeightStore& store() { return *store_; }
  Backend& text_backend() { return backend_of(PlacedComponent::clip_l); }
  Backend& diffusion_backend() { return backend_of(PlacedComponent::diffusion); }
  Backend& vae_backend() { return backend_of(PlacedComponent::vae); }
  // Prints the summary of the image just made.
  void image_done();
  // Writes --memory-report when asked.
  void finish();

 private:
  Backend& backend_of(PlacedComponent component);
  MemorySummary summary(size_t first_entry, double load_start);

  const MemoryFlags& flags_;
  Ledger ledger_;
  Devices devices_;
  BackendSet backends_;
  std::unique_ptr<SimulatedDevice> simulated_;
  std::unique_ptr<DeviceTransfer> gpu_;
  DeviceTransfer* device_ = nullptr;  // where placed components go: simulated_, gpu_ or none
  std::unique_ptr<WeightStore> store_;
  size_t image_start_ = 0;
  double image_load_start_ = 0;  // the store's load seconds when the image began
};

}  // namespace ebb
