#pragma once
// The planner: component and block sizes, activation estimates and a device budget in, the
// fastest device plan that fits out — or, before anything is loaded, an ebb::Error saying that
// nothing fits and the smallest budget that would work.
//
// Plans, fastest first:
//   resident  every component on the device for the whole run: Σ weights + max activations
//   offload   each stage's components uploaded for the stage and released after it:
//             max over stages of (its weights + its activations)
//   stream    as offload, but the diffusion model streams block by block: as many blocks as the
//             budget allows stay resident across steps, the rest upload (prefetch + 1) at a
//             time: resident + (prefetch + 1) × largest block + diffusion activations
// VAE tiling is turned on only when no plan fits untiled; it changes the computation, so the
// planner says it did.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "weights/footprint.h"
#include "weights/memory_plan.h"

namespace ebb {

enum class DevicePlanKind { Resident, Offload, Stream };
const char* device_plan_name(DevicePlanKind kind);

struct PlannerInput {
  std::vector<ComponentFootprint> components;
  // Device activation bytes per stage (text encoders, diffusion, VAE untiled) and the VAE's
  // with tiling.
  uint64_t text_activations = 0, diffusion_activations = 0, vae_activations = 0;
  uint64_t vae_tiled_activations = 0;
  uint64_t budget = 0;  // bytes of device memory; 0: no budget
  int prefetch_depth = 1;
  std::optional<DevicePlanKind> forced;  // --offload-to-cpu / --stream-layers
  // Host memory as the "device" (--max-ram without a GPU): resident means every component kept,
  // offload means --sequential-load with --lazy-load; nothing streams.
  bool host = false;
};

struct PlannerChoice {
  DevicePlanKind kind = DevicePlanKind::Resident;
  bool vae_tiling = false;
  uint64_t resident_block_bytes = 0;  // stream: diffusion blocks kept across steps
  uint64_t peak = 0;                  // the planned peak device bytes
};

PlannerChoice choose_device_plan(const PlannerInput& input);

// Weight bytes per stage and the diffusion model's largest block.
struct StageWeights {
  uint64_t text = 0, diffusion = 0, vae = 0;
  uint64_t largest_diffusion_block = 0;
};
StageWeights stage_weights(const std::vector<ComponentFootprint>& components);

// The least budget any candidate plan fits in (VAE tiling allowed), and that plan.
struct SmallestBudget {
  uint64_t bytes;
  DevicePlanKind kind;
};
SmallestBudget smallest_budget(const PlannerInput& input);

// The choice as store settings: placements, release of device copies, residency (for a host
// plan: load and release times and page-cache eviction).
void apply_device_plan(const PlannerChoice& choice, const PlannerInput& input, MemoryPlan& plan);

// "plan: stream-layers, 1.20 of 3.20 GiB of diffusion blocks resident, prefetch 1, VAE tiling;
//  peak 3.90 of 4.00 GiB"
std::string describe_device_plan(const PlannerChoice& choice, const PlannerInput& input);

}  // namespace ebb
