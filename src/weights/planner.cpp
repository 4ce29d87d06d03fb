#include "weights/planner.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/arena.h"
#include "core/error.h"
#include "weights/byte_units.h"
#include "weights/upload_ring.h"

namespace ebb {
namespace {}  // namespace

StageWeights stage_weights(const std::vector<ComponentFootprint>& components) {
  StageWeights w;
  for (const ComponentFootprint& c : components) {
    Stage stage;
    if (!stage_of(c.name, stage)) continue;
    if (stage == Stage::TextEncoders) w.text += c.bytes;
    if (stage == Stage::Vae) w.vae += c.bytes;
    if (stage == Stage::Diffusion) {
      w.diffusion += c.bytes;
      w.largest_diffusion_block = std::max(w.largest_diffusion_block, c.largest_block);
    }
  }
  return w;
}

namespace {

// Streaming's upload ring (weights/upload_ring.h), as the arena's size classes round it.
uint64_t stream_ring(const PlannerInput& in, const StageWeights& w) {
  return Arena::block_size(
      upload_ring_bytes(in.prefetch_depth, std::min(w.largest_diffusion_block, w.diffusion)));
}

// The peak of a plan with the VAE tiled or not; for stream, with no block resident.
uint64_t minimum_peak(DevicePlanKind kind, const PlannerInput& in, const StageWeights& w,
                      bool vae_tiling) {
  const uint64_t vae_act = vae_tiling ? in.vae_tiled_activations : in.vae_activations;
  const uint64_t text = w.text + in.text_activations;
  const uint64_t vae = w.vae + vae_act;
  switch (kind) {
    case DevicePlanKind::Resident:
      return w.text + w.diffusion + w.vae +
             std::max({in.text_activations, in.diffusion_activations, vae_act});
    case DevicePlanKind::Offload:
      return std::max({text, w.diffusion + in.diffusion_activations, vae});
    case DevicePlanKind::Stream:
      return std::max({text, stream_ring(in, w) + in.diffusion_activations, vae});
  }
  return 0;
}

std::vector<DevicePlanKind> candidate_kinds(const PlannerInput& in) {
  if (in.forced) return {*in.forced};
  std::vector<DevicePlanKind> kinds{DevicePlanKind::Resident, DevicePlanKind::Offload};
  if (!in.host) kinds.push_back(DevicePlanKind::Stream);
  return kinds;
}

}  // namespace

const char* device_plan_name(DevicePlanKind kind) {
  switch (kind) {
    case DevicePlanKind::Resident:
      return "resident";
    case DevicePlanKind::Offload:
      return "offload-to-cpu";
    case DevicePlanKind::Stream:
      return "stream-layers";
  }
  return "?";
}

PlannerChoice choose_device_plan(const PlannerInput& in) {
  const StageWeights w = stage_weights(in.components);
  const std::vector<DevicePlanKind> kinds = candidate_kinds(in);
  const uint64_t budget = in.budget == 0 ? UINT64_MAX : in.budget;
  // Tiling changes the computation, so every plan is tried without it first.
  for (bool tiling : {false, true})
    for (DevicePlanKind kind : kinds) {
      const uint64_t peak = minimum_peak(kind, in, w, tiling);
      if (peak > budget) continue;
      PlannerChoice choice{kind, tiling, 0, peak};
      if (kind == DevicePlanKind::Stream) {
        // What the ring and the activations leave of the budget holds resident blocks; the
        // plan fits, so the subtraction cannot wrap.
        const uint64_t fixed = stream_ring(in, w) + in.diffusion_activations;
        const uint64_t room = in.budget == 0 ? w.diffusion : budget - fixed;
        choice.resident_block_bytes = std::min(room, w.diffusion);
        choice.peak = std::max(peak, choice.resident_block_bytes + fixed);
      }
      return choice;
    }
  const SmallestBudget smallest = smallest_budget(in);
  fail(
      "no memory plan fits the {} budget of {}{}: the smallest budget that works is {} ({}{}, "
      "VAE tiling where needed; weights: text encoders {}, diffusion model {} (largest block {}), "
      "VAE "
      "{})",
      in.host ? "host memory" : "device", format_bytes(in.budget),
      in.forced ? fmt::format(" with {}", device_plan_name(*in.forced)) : "",
      format_bytes(smallest.bytes),
      in.host && smallest.kind == DevicePlanKind::Offload ? "sequential-load + lazy-load"
                                                          : device_plan_name(smallest.kind),
      smallest.kind == DevicePlanKind::Stream ? fmt::format(", prefetch {}", in.prefetch_depth)
                                              : "",
      format_bytes(w.text), format_bytes(w.diffusion), format_bytes(w.largest_diffusion_block),
      format_bytes(w.vae));
}

SmallestBudget smallest_budget(const PlannerInput& in) {
  const StageWeights w = stage_weights(in.components);
  SmallestBudget best{UINT64_MAX, DevicePlanKind::Resident};
  for (DevicePlanKind kind : candidate_kinds(in)) {
    const uint64_t need = minimum_peak(kind, in, w, true);
    if (need < best.bytes) best = {need, kind};
  }
  return best;
}

void apply_device_plan(const PlannerChoice& choice, const PlannerInput& input, MemoryPlan& plan) {
  if (input.host) {
    if (choice.kind == DevicePlanKind::Offload) {
      plan.load = LoadWhen::StageBegin;
      plan.release = Release::AfterStage;
      plan.evict_page_cache = plan.page_cache.dontneed = true;
    }
    return;
  }
  for (const ComponentFootprint& c : input.components) {
    Stage stage;
    const bool streamed = choice.kind == DevicePlanKind::Stream && stage_of(c.name, stage) &&
                          stage == Stage::Diffusion;
    plan.placement[c.name] = streamed ? WeightPlacement::Streamed : WeightPlacement::Device;
  }
  plan.device_release =
      choice.kind == DevicePlanKind::Resident ? Release::Never : Release::AfterStage;
  plan.prefetch_depth = input.prefetch_depth;
  plan.resident_block_bytes = choice.resident_block_bytes;
}

std::string describe_device_plan(const PlannerChoice& choice, const PlannerInput& input) {
  std::string line =
      fmt::format("plan: {}", input.host ? (choice.kind == DevicePlanKind::Resident
                                                ? "every component kept in host memory"
                                                : "sequential-load + lazy-load in host memory")
                                         : device_plan_name(choice.kind));
  if (choice.kind == DevicePlanKind::Stream) {
    const StageWeights w = stage_weights(input.components);
    line += fmt::format(", {} of {} of diffusion blocks resident, prefetch {}",
                        format_bytes(choice.resident_block_bytes), format_bytes(w.diffusion),
                        input.prefetch_depth);
  }
  if (choice.vae_tiling) line += ", VAE tiling turned on to fit";
  line += fmt::format("; planned peak {}", format_bytes(choice.peak));
  if (input.budget) line += fmt::format(" of {}", format_bytes(input.budget));
  return line;
}

}  // namespace ebb
