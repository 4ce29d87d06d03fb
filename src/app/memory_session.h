#pragma once
// What `ebb generate` holds for its memory flags: the plan made from them, the device (when
// one is simulated), the weight store, the backend to compute on, and the reporting — the one
// summary line after each image and the --memory-report file at the end.
#include <cstddef>
#include <memory>

#include "app/memory_flags.h"
#include "backend/backend.h"
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
  MemorySession(const MemoryFlags& flags, const ModelSource& source, int threads,
                Txt2ImgOptions& options);

  WeightStore& store() { return *store_; }
  Backend& backend() { return device_ ? device_->backend() : *cpu_; }
  // Prints the summary of the image just made.
  void image_done();
  // Writes --memory-report when asked.
  void finish();

 private:
  MemorySummary summary(size_t first_entry, double load_start) const;

  const MemoryFlags& flags_;
  Ledger ledger_;
  std::unique_ptr<SimulatedDevice> device_;
  std::unique_ptr<CpuBackend> cpu_;
  std::unique_ptr<WeightStore> store_;
  size_t image_start_ = 0;
  double image_load_start_ = 0;  // the store's load seconds when the image began
};

}  // namespace ebb
