#include "app/memory_session.h"

#include <fmt/format.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "io/atomic_file.h"
#include "pipeline/activation_estimate.h"
#include "pipeline/diffusion_model_spec.h"
#include "weights/budget_flags.h"
#include "weights/byte_units.h"
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

// The device --backend puts a weight-store component on ("clip_l", "diffusion_model", ...);
// none for components nothing runs ("other").
std::optional<std::string> device_of(const Placement& placement, std::string_view component) {
  if (component_group(component) == "diffusion") return placement.of(PlacedComponent::diffusion);
  for (int i = 0; i < kPlacedComponentCount; ++i) {
    const auto c = static_cast<PlacedComponent>(i);
    if (placed_component_name(c) == component) return placement.of(c);
  }
  return std::nullopt;
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
  if (f.offload_to_cpu) in.forced = DevicePlanKind::Offload;
  if (f.stream_layers) in.forced = DevicePlanKind::Stream;
  return in;
}

}  // namespace

MemorySession::MemorySession(const MemoryFlags& flags, const DeviceFlags& device_flags,
                             const ModelSource& source, Txt2ImgOptions& options)
    : flags_(flags),
      devices_(resolve_devices(device_flags, flags.max_vram)),
      backends_(devices_.options) {
  std::vector<std::string> notes;
  MemoryPlan plan = memory_plan_from_flags(flags, std::getenv("SD_MMAP_FLAGS"), notes);
  for (const std::string& note : notes) fmt::print(stderr, "{}\n", note);
  const std::string& diffusion_device = devices_.placement.of(PlacedComponent::diffusion);
  if (flags.simulated_device)
    fmt::print(stderr, "devices: every component on the simulated device sim0\n");
  else {
    const std::string& text = text_encoder_device(devices_.placement);
    const std::string& vae = devices_.placement.of(PlacedComponent::vae);
    fmt::print(stderr, "devices: text encoders {}, diffusion {}, VAE {}\n", text, diffusion_device,
               vae);
    if (text != "cpu" || diffusion_device != "cpu" || vae != "cpu") {
      fmt::print(stderr, "conv2d on the GPU: {}\n", cuda_conv2d_path(devices_.options));
      fmt::print(stderr, "attention on the GPU: {}\n", cuda_attention_path(devices_.options));
    }
  }
  if (flags.simulated_device) {
    uint64_t budget = 0;
    if (!flags.max_vram.empty())
      budget = resolve_budget(parse_max_vram(flags.max_vram, 0), "sim0", system_memory_limit());
    simulated_ = std::make_unique<SimulatedDevice>(devices_.options.cpu_threads,
                                                   budget ? budget : Arena::kUnlimited);
    device_ = simulated_.get();
  } else if (diffusion_device != "cpu") {
    gpu_ = make_device_transfer(backends_.get(diffusion_device));
    device_ = gpu_.get();
  }
  if ((flags.stream_layers || flags.offload_to_cpu) && !device_)
    fail(
        "{} needs a GPU, but the diffusion model runs on the CPU (--backend cuda0 puts it on a "
        "GPU; --simulated-device tries the plan on the CPU)",
        flags.stream_layers ? "--stream-layers" : "--offload-to-cpu");

  PlannerInput in = planner_input(flags, source, plan, options);
  if (device_) {
    // Only the components computing on the device are planned onto it; the rest stay on the host.
    if (!simulated_)
      std::erase_if(in.components, [&](const ComponentFootprint& c) {
        return device_of(devices_.placement, c.name) != diffusion_device;
      });
    const uint64_t budget = device_->backend().arena().budget();
    in.budget = budget == Arena::kUnlimited ? 0 : budget;
  } else {
    in.host = true;
    std::optional<double> gib;
    if (!flags.max_ram.empty()) gib = parse_max_ram(flags.max_ram);
    in.budget = resolve_max_ram(gib);
  }
  if (device_ || planner_asked(flags)) {
    const PlannerChoice choice = choose_device_plan(in);  // fails before anything loads
    apply_device_plan(choice, in, plan);
    if (choice.vae_tiling && !options.vae_tiling) options.vae_tiling = kPlannerVaeTiling;
    fmt::print(stderr, "{}\n", describe_device_plan(choice, in));
  }
  store_ = std::make_unique<WeightStore>(source, ledger_, std::move(plan), device_);
}

Backend& MemorySession::backend_of(PlacedComponent component) {
  if (simulated_) return simulated_->backend();
  return backends_.get(devices_.placement.of(component));
}

MemorySummary MemorySession::summary(size_t first_entry, double load_start) {
  Backend& backend = device_ ? device_->backend() : backends_.get("cpu");
  return summarize(ledger_.entries(), first_entry, store_->stats().load_seconds - load_start,
                   device_ ? device_->name() : "cpu", backend.arena().stats());
}

void MemorySession::image_done() {
  const WeightStoreStats stats = store_->stats();
  if (stats.replanned_resident_bytes != stats.planned_resident_bytes)
    fmt::print(stderr,
               "streaming: from the third step on, {} of diffusion blocks resident ({} planned), "
               "chosen by the second step's measured compute per byte and free budget\n",
               format_bytes(stats.replanned_resident_bytes),
               format_bytes(stats.planned_resident_bytes));
  fmt::print(stderr, "{}\n", summary_line(summary(image_start_, image_load_start_)));
  image_start_ = ledger_.entries().size();
  image_load_start_ = store_->stats().load_seconds;
}

void MemorySession::finish() {
  if (flags_.memory_report.empty()) return;
  nlohmann::json report = ledger_.to_json();
  report["summary"] = summary_json(summary(0, 0));
  if (!store_->measured_pass().empty())
    report["measured_pass"] = measured_pass_json(store_->measured_pass());
  const std::string text = report.dump(1);
  AtomicFile file = AtomicFile::create(flags_.memory_report, /*overwrite=*/true);
  file.write(std::as_bytes(std::span(text)));
  file.commit();
  fmt::print(stderr, "wrote memory report {}\n", flags_.memory_report);
}

}  // namespace ebb
