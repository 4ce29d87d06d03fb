// Device plans on the simulated device give the CPU's image bit for bit on the tiny SD1 and
// SDXL models — resident, offload, and streaming with 0/25/50/90% of the UNet resident at
// prefetch 1 and 2, from the mapping or from O_DIRECT reads — while streaming holds no more than
// its resident blocks plus (prefetch + 1) of the largest streamed block; and the planner's smallest
// budget runs.
#include <gtest/gtest.h>

#include <algorithm>

#include "backend/cpu/cpu_backend.h"
#include "backend/simulated_device.h"
#include "pipeline/activation_estimate.h"
#include "support/expect_error.h"
#include "support/sd_tiny_pipeline.h"
#include "weights/footprint.h"
#include "weights/planner.h"

namespace ebb {
namespace {

MemoryPlan device_plan(const ModelSource& source, DevicePlanKind kind, double resident_share,
                       int prefetch) {
  PlannerInput in;
  in.components = component_footprints(source, {});
  in.forced = kind;
  in.prefetch_depth = prefetch;
  PlannerChoice choice = choose_device_plan(in);
  choice.resident_block_bytes = static_cast<uint64_t>(
      resident_share *
      static_cast<double>(stage_weights(component_footprints(source, {})).diffusion));
  MemoryPlan plan;
  apply_device_plan(choice, in, plan);
  return plan;
}

class Txt2ImgDevicePlansTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Txt2ImgDevicePlansTest, EveryDevicePlanGivesTheCpuImage) {
  const std::string arch = GetParam();
  const ModelSource source = sd_test::open_tiny(arch);
  sd_test::TinyImage reference;
  {
    CpuBackend cpu(1);
    Ledger ledger;
    WeightStore store(source, ledger, {});
    reference = sd_test::tiny_txt2img(arch, cpu, store);
  }
  const StageWeights w = stage_weights(component_footprints(source, {}));
  struct Case {
    DevicePlanKind kind;
    double resident;
    int prefetch;
    bool direct_io = false;
  };
  for (const Case& c :
       {Case{DevicePlanKind::Resident, 1, 1}, Case{DevicePlanKind::Offload, 1, 1},
        Case{DevicePlanKind::Stream, 0, 1}, Case{DevicePlanKind::Stream, 0.25, 1},
        Case{DevicePlanKind::Stream, 0.5, 2}, Case{DevicePlanKind::Stream, 0.9, 1},
        Case{DevicePlanKind::Stream, 0.9, 2}, Case{DevicePlanKind::Stream, 0.5, 1, true}}) {
    SCOPED_TRACE(fmt::format("{} resident {} prefetch {} direct-io {}", device_plan_name(c.kind),
                             c.resident, c.prefetch, c.direct_io));
    SimulatedDevice device(1, Arena::kUnlimited);
    Ledger ledger;
    MemoryPlan plan = device_plan(source, c.kind, c.resident, c.prefetch);
    plan.use_mmap = !c.direct_io;
    plan.direct_io = c.direct_io;
    WeightStore store(source, ledger, plan, &device);
    for (int image = 0; image < 2; ++image) {
      const sd_test::TinyImage got = sd_test::tiny_txt2img(arch, device.backend(), store);
      EXPECT_EQ(got.latent, reference.latent);
      EXPECT_EQ(got.pixels, reference.pixels);
    }
    EXPECT_GT(store.stats().uploads, 0u);
    if (!c.direct_io) {
      EXPECT_EQ(ledger.peak_total("cpu"), 0u);  // host copies stay mapped
    }
    if (c.kind == DevicePlanKind::Stream) {
      const uint64_t streaming = plan.resident_block_bytes +
                                 static_cast<uint64_t>(c.prefetch + 1) * w.largest_diffusion_block;
      EXPECT_LE(ledger.peak("sim0", MemoryTag::Weights), std::max({w.text, streaming, w.vae}));
      EXPECT_LE(store.stats().resident_block_bytes, plan.resident_block_bytes);
    }
  }
}

TEST_P(Txt2ImgDevicePlansTest, ThePlannersSmallestBudgetRuns) {
  const std::string arch = GetParam();
  const ModelSource source = sd_test::open_tiny(arch);
  const DiffusionModelSpec spec = sd_test::tiny_model_spec(arch, source);
  const std::vector<int64_t> latent = sd_test::sd_manifest().at("txt2img").at("latent_shape");
  const int height = static_cast<int>(latent.at(2) * spec.vae.downscale());
  const int width = static_cast<int>(latent.at(3) * spec.vae.downscale());
  const VaeTiling tiling{.tile = 4, .overlap = 2};
  const StageActivations a = estimate_stage_activations(spec, width, height, tiling);
  PlannerInput in;
  in.components = component_footprints(source, {});
  in.text_activations = a.text;
  in.diffusion_activations = a.diffusion;
  in.vae_activations = a.vae;
  in.vae_tiled_activations = a.vae_tiled;
  in.budget = smallest_budget(in).bytes;
  const PlannerChoice choice = choose_device_plan(in);
  MemoryPlan plan;
  apply_device_plan(choice, in, plan);
  const std::optional<VaeTiling> used =
      choice.vae_tiling ? std::optional<VaeTiling>(tiling) : std::nullopt;

  CpuBackend cpu(1);
  Ledger cpu_ledger;
  WeightStore cpu_store(source, cpu_ledger, {});
  const sd_test::TinyImage reference = sd_test::tiny_txt2img(arch, cpu, cpu_store, used);

  SimulatedDevice device(1, in.budget);
  Ledger ledger;
  WeightStore store(source, ledger, plan, &device);
  const sd_test::TinyImage got = sd_test::tiny_txt2img(arch, device.backend(), store, used);
  EXPECT_EQ(got.pixels, reference.pixels);
  EXPECT_LE(device.backend().arena().stats().peak_reserved, in.budget);
  test::expect_error_with(
      [&] {
        in.budget -= 1;
        choose_device_plan(in);
      },
      {"no memory plan fits"});
}

INSTANTIATE_TEST_SUITE_P(TinyModels, Txt2ImgDevicePlansTest, ::testing::Values("sd1", "sdxl"));

}  // namespace
}  // namespace ebb
