#include "app/memory_session.h"

#include <fmt/format.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"

namespace ebb {

MemorySession::MemorySession(const MemoryFlags& flags, const ModelSource& source, int threads,
                             Txt2ImgOptions& options)
    : flags_(flags) {
  (void)options;
  std::vector<std::string> notes;
  MemoryPlan plan = memory_plan_from_flags(flags, std::getenv("SD_MMAP_FLAGS"), notes);
  for (const std::string& note : notes) fmt::print(stderr, "{}\n", note);
  cpu_ = std::make_unique<CpuBackend>(threads);
  store_ = std::make_unique<WeightStore>(source, ledger_, std::move(plan), device_.get());
}

MemorySummary MemorySession::summary(size_t first_entry, double load_start) const {
  const Arena& arena = device_ ? device_->backend().arena() : cpu_->arena();
  return summarize(ledger_.entries(), first_entry, store_->stats().load_seconds - load_start,
                   device_ ? device_->name() : "cpu", arena.stats());
}

void MemorySession::image_done() {
  fmt::print(stderr, "{}\n", summary_line(summary(image_start_, image_load_start_)));
  image_start_ = ledger_.entries().size();
  image_load_start_ = store_->stats().load_seconds;
}

void MemorySession::finish() {
  if (flags_.memory_report.empty()) return;
  nlohmann::json report = ledger_.to_json();
  report["summary"] = summary_json(summary(0, 0));
  const std::string text = report.dump(1);
  AtomicFile file = AtomicFile::create(flags_.memory_report, /*overwrite=*/true);
  file.write(std::as_bytes(std::span(text)));
  file.commit();
  fmt::print(stderr, "wrote memory report {}\n", flags_.memory_report);
}

}  // namespace ebb
