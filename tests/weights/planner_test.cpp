// The planner on made-up sizes: the fastest plan that fits each budget, streaming's resident
// share, VAE tiling only when needed, forced plans, and an impossible budget failing with the
// smallest budget that works — which then does.
#include "weights/planner.h"

#include <gtest/gtest.h>

#include <string>

#include "backend/arena.h"
#include "core/error.h"
#include "support/expect_error.h"
#include "weights/byte_units.h"

namespace ebb {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// The largest block as the arena's size classes round it (52 MiB); the upload ring of prefetch
// 1 holds two.
uint64_t slot() {
  return Arena::block_size(50 * kMiB);
}

// Text encoders 100 MiB, diffusion model 1000 MiB in blocks of at most 50 MiB, VAE 80 MiB;
// activations: text 10, diffusion 200, VAE 400 (100 tiled).
PlannerInput input(uint64_t budget_mib) {
  PlannerInput in;
  in.components = {{"clip_l", 100 * kMiB, 10 * kMiB, 10},
                   {"diffusion_model", 1000 * kMiB, 50 * kMiB, 25},
                   {"vae", 80 * kMiB, 20 * kMiB, 8}};
  in.text_activations = 10 * kMiB;
  in.diffusion_activations = 200 * kMiB;
  in.vae_activations = 400 * kMiB;
  in.vae_tiled_activations = 100 * kMiB;
  in.budget = budget_mib * kMiB;
  return in;
}

TEST(Planner, PicksTheFastestPlanThatFits) {
  EXPECT_EQ(choose_device_plan(input(0)).kind, DevicePlanKind::Resident);
  EXPECT_EQ(choose_device_plan(input(1580)).kind, DevicePlanKind::Resident);  // 1180 + 400
  EXPECT_EQ(choose_device_plan(input(1579)).kind, DevicePlanKind::Offload);
  EXPECT_EQ(choose_device_plan(input(1200)).kind, DevicePlanKind::Offload);  // 1000 + 200
  const PlannerChoice stream = choose_device_plan(input(1199));
  EXPECT_EQ(stream.kind, DevicePlanKind::Stream);
  EXPECT_FALSE(stream.vae_tiling);
  // Everything but the upload ring and the activations stays resident.
  EXPECT_EQ(stream.resident_block_bytes, (1199 - 200) * kMiB - 2 * slot());
  EXPECT_LE(stream.peak, 1199 * kMiB);
}

TEST(Planner, TurnsVaeTilingOnOnlyWhenTheVaeDoesNotFitUntiled) {
  EXPECT_FALSE(choose_device_plan(input(480)).vae_tiling);  // 80 + 400
  const PlannerChoice tiled = choose_device_plan(input(479));
  EXPECT_EQ(tiled.kind, DevicePlanKind::Stream);
  EXPECT_TRUE(tiled.vae_tiling);
  EXPECT_NE(describe_device_plan(tiled, input(479)).find("VAE tiling"), std::string::npos);
}

TEST(Planner, ForcedPlansAreSizedToo) {
  PlannerInput in = input(4000);
  in.forced = DevicePlanKind::Stream;
  in.prefetch_depth = 2;
  const PlannerChoice c = choose_device_plan(in);
  EXPECT_EQ(c.kind, DevicePlanKind::Stream);
  EXPECT_EQ(c.resident_block_bytes, 1000 * kMiB);  // the budget holds every block
  MemoryPlan plan;
  apply_device_plan(c, in, plan);
  EXPECT_EQ(plan.placement_of("diffusion_model"), WeightPlacement::Streamed);
  EXPECT_EQ(plan.placement_of("vae"), WeightPlacement::Device);
  EXPECT_EQ(plan.device_release, Release::AfterStage);
  EXPECT_EQ(plan.prefetch_depth, 2);
}

TEST(Planner, AnImpossibleBudgetNamesTheSmallestThatWorks) {
  // Streaming with prefetch 1 and VAE tiling: max(110, 2 × 52 + 200, 80 + 100) = 304 MiB.
  const uint64_t smallest_budget = 2 * slot() + 200 * kMiB;
  test::expect_error_with([&] { choose_device_plan(input(smallest_budget / kMiB - 1)); },
                          {"no memory plan fits", format_bytes(smallest_budget), "stream-layers"});
  const PlannerChoice smallest = choose_device_plan(input(smallest_budget / kMiB));
  EXPECT_EQ(smallest.kind, DevicePlanKind::Stream);
  EXPECT_EQ(smallest.resident_block_bytes, 0u);
  EXPECT_TRUE(smallest.vae_tiling);
}

TEST(Planner, HostMemoryPlansKeepOrRunSequentially) {
  PlannerInput in = input(1300);
  in.host = true;
  const PlannerChoice c = choose_device_plan(in);
  EXPECT_EQ(c.kind, DevicePlanKind::Offload);
  MemoryPlan plan;
  apply_device_plan(c, in, plan);
  EXPECT_EQ(plan.load, LoadWhen::StageBegin);
  EXPECT_EQ(plan.release, Release::AfterStage);
  EXPECT_TRUE(plan.evict_page_cache);
  EXPECT_EQ(plan.placement_of("diffusion_model"), WeightPlacement::Host);
  in.budget = 1000 * kMiB;  // below the diffusion stage, and nothing streams on the host
  test::expect_error_with([&] { choose_device_plan(in); }, {"host memory", "sequential-load"});
}

}  // namespace
}  // namespace ebb
