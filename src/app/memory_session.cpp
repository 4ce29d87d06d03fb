#include "app/memory_session.h"

#include <fmt/format.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "pipeline/activation_estimate.h"
#include "pipeline/diffusion_model_spec.h"
#include "weights/budget_flags.h"
#include "weights/footprint.h"
#include "weights/planner.h"

namespace ebb {
namespace {

// stable-diffusion.cpp's tile for --vae-tiling, in latent pixels, which the planner also uses.
constexpr VaeTiling kPlannerVaeTiling{.tile = 32, .overlap = 8};

bool planner_asked(const MemoryFlags& f) {
  return !f.max_vram.empty() || !f.max_ram.empty() || f.auto_fit || f.memory == "auto" ||
         f.offload_to_cpu || f.stream_layers;
}

PlannerInput planner_input(const MemoryFlags& f, const ModelSource& source, const MemoryPlan& plan,
                           const Txt2ImgOptions& options) {
  PlannerInput in;
  in.components = component_footprints(source, plan);
  const StageActivations a =
      estimate_stage_activations(diffusion_model_spec(source), options.width, options.height,
                                 options.vae_tiling.value_or(kPlannerVaeTiling));
  in.text_activations = a.text;
  in.diffusion_activations = a.diffusion;
  in.vae_activations = options.vae_tiling ? a.vae_tiled : a.vae;
  in.vae_tiled_activations = a.vae_tiled;
  in.prefetch_depth = plan.prefetch_depth;
  if (f.simulated_device) {
    if (!f.max_vram.empty())
      in.budget = resolve_budget(parse_max_vram(f.max_vram, 0), "sim0", system_memory_limit());
    if (f.offload_to_cpu) in.forced = DevicePlanKind::Offload;
    if (f.stream_layers) in.forced = DevicePlanKind::Stream;
  } else {
    in.host = true;
    std::optional<double> gib;
    if (!f.max_ram.empty()) gib = parse_max_ram(f.max_ram);
    in.budget = resolve_max_ram(gib);
  }
  return in;
}

}  // namespace

MemorySession::MemorySession(const MemoryFlags& flags, const ModelSource& source, int threads,
                             Txt2ImgOptions& options)
    : flags_(flags) {
  std::vector<std::string> notes;
  MemoryPlan plan = memory_plan_from_flags(flags, std::getenv("SD_MMAP_FLAGS"), notes);
  for (const std::string& note : notes) fmt::print(stderr, "{}\n", note);
  uint64_t device_budget = Arena::kUnlimited;
  if (flags.simulated_device || planner_asked(flags)) {
    const PlannerInput in = planner_input(flags, source, plan, options);
    const PlannerChoice choice = choose_device_plan(in);  // fails before anything loads
    apply_device_plan(choice, in, plan);
    if (choice.vae_tiling && !options.vae_tiling) options.vae_tiling = kPlannerVaeTiling;
    if (planner_asked(flags)) fmt::print(stderr, "{}\n", describe_device_plan(choice, in));
    if (!in.host && in.budget) device_budget = in.budget;
  }
  if (flags.simulated_device)
    device_ = std::make_unique<SimulatedDevice>(threads, device_budget);
  else
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
