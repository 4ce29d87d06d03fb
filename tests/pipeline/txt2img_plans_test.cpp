// Bit-identical images under every host memory plan: the same tiny SD1/SDXL model, seed and
// settings give the same latent and pixels whether weights are mapped or read, loaded eagerly
// or lazily, kept, freed after their stage, dropped after each use or evicted from the page
// cache; and a second image from one process is the same as the first.
#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "support/sd_tiny_pipeline.h"

namespace ebb {
namespace {

struct NamedPlan {
  const char* name;
  MemoryPlan plan;
};

std::vector<NamedPlan> host_plans() {
  std::vector<NamedPlan> plans;
  MemoryPlan eager;
  eager.load = LoadWhen::AtStart;
  plans.push_back({"eager", eager});
  MemoryPlan free_after_stage;
  free_after_stage.release = Release::AfterStage;
  plans.push_back({"free-params-immediately", free_after_stage});
  MemoryPlan sequential;
  sequential.load = LoadWhen::StageBegin;
  sequential.release = Release::AfterStage;
  plans.push_back({"sequential", sequential});
  MemoryPlan lazy = free_after_stage;
  lazy.evict_page_cache = true;
  lazy.page_cache.dontneed = true;
  plans.push_back({"lazy-load", lazy});
  MemoryPlan disk;
  disk.release = Release::AfterUse;
  plans.push_back({"params-backend disk", disk});
  MemoryPlan no_mmap;
  no_mmap.use_mmap = false;
  plans.push_back({"no-mmap", no_mmap});
  MemoryPlan direct = sequential;
  direct.use_mmap = false;
  direct.direct_io = true;
  plans.push_back({"sequential direct-io", direct});
  MemoryPlan hints;
  hints.page_cache = {true, true, true, true};
  plans.push_back({"page-cache hints", hints});
  return plans;
}

class Txt2ImgPlansTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Txt2ImgPlansTest, EveryHostPlanGivesTheDefaultsImage) {
  const std::string arch = GetParam();
  const ModelSource source = sd_test::open_tiny(arch);
  CpuBackend backend(1);
  sd_test::TinyImage reference;
  {
    Ledger ledger;
    WeightStore store(source, ledger, {});
    reference = sd_test::tiny_txt2img(arch, backend, store);
    const sd_test::TinyImage second = sd_test::tiny_txt2img(arch, backend, store);
    EXPECT_EQ(second.latent, reference.latent);
    EXPECT_EQ(second.pixels, reference.pixels);
  }
  ASSERT_FALSE(reference.pixels.empty());
  for (const NamedPlan& p : host_plans()) {
    SCOPED_TRACE(p.name);
    Ledger ledger;
    WeightStore store(source, ledger, p.plan);
    for (int image = 0; image < 2; ++image) {
      const sd_test::TinyImage got = sd_test::tiny_txt2img(arch, backend, store);
      EXPECT_EQ(got.latent, reference.latent);
      EXPECT_EQ(got.pixels, reference.pixels);
    }
    EXPECT_EQ(store.active_leases(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, Txt2ImgPlansTest, ::testing::Values("sd1", "sdxl"));

}  // namespace
}  // namespace ebb
