// Every host plan of the weight store on a synthetic text encoder / diffusion model / VAE of
// distinct sizes, checked from the ledger: default keeps everything (peak = the sum), eager
// loads at start, free-after-stage leaves nothing of finished components, sequential peaks at
// the largest stage, disk keeps one block, lazy-load drops the page cache of finished
// components; repeated generations from the mapping do not grow resident memory; and a model
// file that changes while mapped or streamed is reported, not a SIGBUS.
#include <linux/magic.h>
#include <sys/vfs.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "backend/simulated_device.h"
#include "core/error.h"
#include "io/page_cache.h"
#include "support/expect_error.h"
#include "support/synthetic_pipeline.h"
#include "support/temp_dir.h"
#include "weights/process_memory.h"

namespace ebb {
namespace {

using test::synthetic_stages;

bool on_tmpfs(const std::filesystem::path& path) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 && st.f_type == TMPFS_MAGIC;
}

uint64_t largest_stage_bytes() {
  uint64_t m = 0;
  for (const auto& s : synthetic_stages()) m = std::max(m, s.bytes());
  return m;
}

class MemoryPlansTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir / "model.safetensors";
    test::write_synthetic_model(path);
    source = std::make_unique<ModelSource>(ModelSource::open({path}));
  }
  // Owned buffers (--no-mmap), so that every weight byte is in the ledger.
  static MemoryPlan owned(MemoryPlan plan = {}) {
    plan.use_mmap = false;
    return plan;
  }
  test::TempDir dir;
  std::string path;
  std::unique_ptr<ModelSource> source;
  Ledger ledger;
};

TEST_F(MemoryPlansTest, DefaultLoadsAtFirstUseAndKeepsEverything) {
  WeightStore store(*source, ledger, owned());
  EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), 0u);
  test::run_synthetic_pipeline(store);
  EXPECT_EQ(ledger.peak("cpu", MemoryTag::Weights), test::synthetic_total_bytes());
  EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), test::synthetic_total_bytes());
  // A second image pays no load.
  const size_t events = ledger.entries().size();
  test::run_synthetic_pipeline(store);
  for (size_t i = events; i < ledger.entries().size(); ++i)
    EXPECT_NE(ledger.entries()[i].event, LedgerEvent::Load);
}

TEST_F(MemoryPlansTest, EagerLoadsEverythingAtStart) {
  MemoryPlan plan = owned();
  plan.load = LoadWhen::AtStart;
  WeightStore store(*source, ledger, plan);
  EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), test::synthetic_total_bytes());
  const size_t events = ledger.entries().size();
  test::run_synthetic_pipeline(store);
  for (size_t i = events; i < ledger.entries().size(); ++i)
    EXPECT_NE(ledger.entries()[i].event, LedgerEvent::Load);
}

TEST_F(MemoryPlansTest, FreeAfterStageLeavesNothingOfFinishedComponents) {
  MemoryPlan plan = owned();
  plan.release = Release::AfterStage;
  WeightStore store(*source, ledger, plan);
  for (size_t i = 0; i < synthetic_stages().size(); ++i) {
    test::run_synthetic_stage(store, i, [] {});
    for (size_t done = 0; done <= i; ++done)
      EXPECT_EQ(ledger.held("cpu", synthetic_stages()[done].component), 0u);
  }
  EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), 0u);
}

TEST_F(MemoryPlansTest, SequentialPeakIsTheLargestStageNotTheSum) {
  MemoryPlan plan = owned();
  plan.load = LoadWhen::StageBegin;
  plan.release = Release::AfterStage;
  WeightStore store(*source, ledger, plan);
  for (size_t i = 0; i < synthetic_stages().size(); ++i) {
    // Loaded whole when the stage begins, before its first lease.
    store.begin_stage(synthetic_stages()[i].stage);
    EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), synthetic_stages()[i].bytes());
    test::run_synthetic_stage(store, i, [] {});
  }
  EXPECT_LE(static_cast<double>(ledger.peak("cpu", MemoryTag::Weights)),
            1.05 * static_cast<double>(largest_stage_bytes()));
  EXPECT_LT(largest_stage_bytes(), test::synthetic_total_bytes());
}

TEST_F(MemoryPlansTest, DiskDropsEachBlockAfterUseAndReadsItAgain) {
  MemoryPlan plan = owned();
  plan.release = Release::AfterUse;
  WeightStore store(*source, ledger, plan);
  for (int image = 0; image < 2; ++image)
    for (size_t i = 0; i < synthetic_stages().size(); ++i)
      test::run_synthetic_stage(store, i,
                                [&] { EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), 0u); });
  uint64_t largest_block = 0;
  for (const auto& s : synthetic_stages()) largest_block = std::max(largest_block, s.block_bytes());
  EXPECT_EQ(ledger.peak("cpu", MemoryTag::Weights), largest_block);
}

TEST_F(MemoryPlansTest, PerComponentReleaseOverridesTheDefault) {
  MemoryPlan plan = owned();
  plan.component_release["clip"] = Release::AfterUse;
  WeightStore store(*source, ledger, plan);
  test::run_synthetic_pipeline(store);
  EXPECT_EQ(ledger.held("cpu", "clip_l"), 0u);
  EXPECT_EQ(ledger.held("cpu", "diffusion_model"), synthetic_stages()[1].bytes());
}

TEST_F(MemoryPlansTest, MappedWeightsOwnNothing) {
  WeightStore store(*source, ledger, {});
  test::run_synthetic_pipeline(store);
  EXPECT_EQ(ledger.peak_total("cpu"), 0u);
}

TEST_F(MemoryPlansTest, LazyLoadDropsThePageCacheOfFinishedComponents) {
  if (on_tmpfs(dir.path())) GTEST_SKIP() << dir.path() << " is on tmpfs, whose pages stay";
  MemoryPlan plan;
  plan.release = Release::AfterStage;
  plan.evict_page_cache = true;
  WeightStore store(*source, ledger, plan);
  evict_file(path);
  for (size_t i = 0; i < synthetic_stages().size(); ++i) {
    const char* component = synthetic_stages()[i].component;
    store.begin_stage(synthetic_stages()[i].stage);
    {
      const WeightLease lease = store.lease(component, "");
      for (uint32_t ti : source->component(component)->tensors) {
        volatile std::byte sink{};
        for (std::byte b : lease.get(source->tensors()[ti].info.name).bytes) sink = b;
        (void)sink;
      }
    }
    EXPECT_GT(store.page_cache_bytes(component), synthetic_stages()[i].bytes() / 2);
    store.end_stage(synthetic_stages()[i].stage);
    EXPECT_LE(store.page_cache_bytes(component), store.stats().page_cache_kept);
    EXPECT_LT(store.page_cache_bytes(component), synthetic_stages()[i].bytes() / 4);
  }
  bool sampled = false;
  for (const LedgerEntry& e : ledger.entries())
    sampled |= e.event == LedgerEvent::Sample && e.device == "page_cache_kept";
  EXPECT_TRUE(sampled);
}

// Eager owned reads (--eager-load --direct-io) read every weight themselves; readahead asked
// of the mapping as well would read the model twice and fill the page cache with it.
TEST_F(MemoryPlansTest, EagerOwnedReadsLeaveThePageCacheAlone) {
  if (on_tmpfs(dir.path())) GTEST_SKIP() << dir.path() << " is on tmpfs, whose pages stay";
  evict_file(path);
  MemoryPlan plan = owned();
  plan.direct_io = true;
  plan.load = LoadWhen::AtStart;
  WeightStore store(*source, ledger, plan);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // time for any readahead
  EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), test::synthetic_total_bytes());
  // What stays is the pages the header was read through at open.
  uint64_t cached = 0;
  for (const auto& s : synthetic_stages()) cached += store.page_cache_bytes(s.component);
  EXPECT_LT(cached, test::synthetic_total_bytes() / 8);
}

// stable-diffusion.cpp #1675: with mmap on, resident memory grew from one generation to the
// next. Here mapped weights own nothing and released ones are unmapped, so eight more
// generations add far less than one copy of the model would.
TEST_F(MemoryPlansTest, RepeatedGenerationsFromTheMappingDoNotGrowResidentMemory) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "AddressSanitizer's quarantine keeps freed memory resident";
#endif
  MemoryPlan plan;
  plan.release = Release::AfterStage;
  WeightStore store(*source, ledger, plan);
  test::run_synthetic_pipeline(store);
  const ResidentMemory first = resident_memory();
  for (int i = 0; i < 8; ++i) test::run_synthetic_pipeline(store);
  const ResidentMemory last = resident_memory();
  EXPECT_LT(last.anon + last.file, first.anon + first.file + test::synthetic_total_bytes());
  EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), 0u);
}

// A streamed read checks the file before it is queued, like any other load.
TEST_F(MemoryPlansTest, AModelFileChangedWhileStreamingFromReadsIsReported) {
  MemoryPlan plan;
  plan.placement["diffusion_model"] = WeightPlacement::Streamed;
  plan.use_mmap = false;
  plan.resident_block_bytes = 0;
  SimulatedDevice device(1, Arena::kUnlimited);
  WeightStore store(*source, ledger, plan, &device);
  store.begin_stage(Stage::Diffusion);
  std::filesystem::resize_file(path, 100);
  test::expect_error_with(
      [&] {
        const WeightLease lease = store.lease("diffusion_model", "input_blocks.0.");
        (void)lease.get("input_blocks.0.weight");
      },
      {path});
}

TEST_F(MemoryPlansTest, AModelFileChangedWhileMappedIsReportedBeforeLoading) {
  WeightStore store(*source, ledger, {});
  std::filesystem::resize_file(path, 100);  // a truncation: touching the mapping would SIGBUS
  test::expect_error_with([&] { (void)store.lease("diffusion_model", "input_blocks.0."); }, {path});
}

}  // namespace
}  // namespace ebb
