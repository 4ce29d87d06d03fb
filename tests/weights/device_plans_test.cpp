// Device plans on the simulated device with the synthetic three-stage model: resident uploads
// once, offload holds one stage at a time, streaming keeps its resident blocks plus at most
// (prefetch + 1) × its largest block in the upload ring, uploads only the streamed blocks each
// step, has the next block on its way before it is asked for, and a planner-sized budget is never
// exceeded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "backend/simulated_device.h"
#include "support/synthetic_pipeline.h"
#include "support/temp_dir.h"
#include "weights/footprint.h"
#include "weights/planner.h"

namespace ebb {
namespace {

using test::synthetic_stages;

constexpr size_t kDiffusion = 1;  // index of the diffusion model in synthetic_stages()

uint64_t block_bytes() {
  return synthetic_stages()[kDiffusion].block_bytes();
}

uint64_t uploads(const Ledger& ledger, size_t from = 0) {
  uint64_t n = 0;
  const auto entries = ledger.entries();
  for (size_t i = from; i < entries.size(); ++i) n += entries[i].event == LedgerEvent::Upload;
  return n;
}

class DevicePlansTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir / "model.safetensors";
    test::write_synthetic_model(path);
    source = std::make_unique<ModelSource>(ModelSource::open({path}));
  }
  // Sampler steps of the diffusion stage: every block leased in turn, then the step's end.
  static void run_steps(WeightStore& store, int steps) {
    const test::SyntheticStage& s = synthetic_stages()[kDiffusion];
    for (int step = 0; step < steps; ++step) {
      for (int b = 0; b < s.blocks; ++b) {
        const std::string prefix = fmt::format(fmt::runtime(s.block_format), b);
        const WeightLease lease = store.lease(s.component, prefix);
        (void)lease.get(prefix + "weight");
      }
      store.step_done();
    }
  }
  static MemoryPlan on_device(WeightPlacement diffusion = WeightPlacement::Device) {
    MemoryPlan plan;
    for (const auto& s : synthetic_stages()) plan.placement[s.component] = WeightPlacement::Device;
    plan.placement["diffusion_model"] = diffusion;
    return plan;
  }
  test::TempDir dir;
  std::string path;
  std::unique_ptr<ModelSource> source;
  Ledger ledger;
  SimulatedDevice device{1, Arena::kUnlimited};
};

TEST_F(DevicePlansTest, ResidentUploadsEachBlockOnce) {
  WeightStore store(*source, ledger, on_device(), &device);
  test::run_synthetic_pipeline(store);
  test::run_synthetic_pipeline(store);
  uint64_t blocks = 0;
  for (const auto& s : synthetic_stages()) blocks += static_cast<uint64_t>(s.blocks);
  EXPECT_EQ(uploads(ledger), blocks);
  EXPECT_EQ(ledger.current("sim0", MemoryTag::Weights), test::synthetic_total_bytes());
  EXPECT_EQ(ledger.peak_total("cpu"), 0u);  // the host side stays zero-copy
}

class OffloadTest : public DevicePlansTest, public ::testing::WithParamInterface<LoadWhen> {};

TEST_P(OffloadTest, OffloadHoldsOnlyTheRunningStage) {
  MemoryPlan plan = on_device();
  plan.load = GetParam();  // eager load must not put every component on the device at once
  plan.device_release = Release::AfterStage;
  WeightStore store(*source, ledger, plan, &device);
  for (size_t i = 0; i < synthetic_stages().size(); ++i) {
    test::run_synthetic_stage(store, i, [] {});
    EXPECT_EQ(ledger.current("sim0", MemoryTag::Weights), 0u);
  }
  uint64_t largest = 0;
  for (const auto& s : synthetic_stages()) largest = std::max(largest, s.bytes());
  EXPECT_EQ(ledger.peak("sim0", MemoryTag::Weights), largest);
}

INSTANTIATE_TEST_SUITE_P(LoadTimes, OffloadTest,
                         ::testing::Values(LoadWhen::FirstUse, LoadWhen::AtStart,
                                           LoadWhen::StageBegin));

struct StreamCase {
  int resident_blocks;
  int prefetch;
};

class StreamingTest : public DevicePlansTest, public ::testing::WithParamInterface<StreamCase> {};

TEST_P(StreamingTest, ResidentBlocksStayAndTheRestStreamAhead) {
  const auto [resident, prefetch] = GetParam();
  MemoryPlan plan = on_device(WeightPlacement::Streamed);
  plan.prefetch_depth = prefetch;
  plan.resident_block_bytes = static_cast<uint64_t>(resident) * block_bytes();
  WeightStore store(*source, ledger, plan, &device);
  const test::SyntheticStage& s = synthetic_stages()[kDiffusion];
  constexpr int kSteps = 4;
  store.begin_stage(Stage::Diffusion);
  for (int step = 0; step < kSteps; ++step) {
    const size_t step_start = ledger.entries().size();
    const uint64_t fenced_before = device.fenced_uploads();
    for (int b = 0; b < s.blocks; ++b) {
      const std::string prefix = fmt::format(fmt::runtime(s.block_format), b);
      const WeightLease lease = store.lease(s.component, prefix);
      const Weight& w = lease.get(prefix + "weight");
      float first;
      std::memcpy(&first, w.bytes.data(), 4);
      ASSERT_EQ(first, test::synthetic_base(1, b));
      // From the second step on, the block after a streamed one is already uploading.
      if (step > 0 && b >= resident && b + 1 < s.blocks) {
        EXPECT_GE(ledger.held("sim0", s.component),
                  static_cast<uint64_t>(resident + 2) * block_bytes())
            << "step " << step << " block " << b;
      }
    }
    // Only the streamed blocks move; the resident ones stay, and so do streamed blocks that
    // all fit in the ring of (prefetch + 1) blocks. (Step 1 also uploads block 0 of the first
    // pass, which nothing predicted yet.) Each upload goes into the ring and waits only for the
    // compute that read the region's previous block, not for all the compute queued before it.
    const int streamed = s.blocks - resident;
    const auto moved = static_cast<uint64_t>(streamed > prefetch + 1 ? streamed : 0);
    if (step > 1) {
      EXPECT_EQ(uploads(ledger, step_start), moved);
      EXPECT_EQ(device.fenced_uploads() - fenced_before, moved);
    }
  }
  store.end_stage(Stage::Diffusion);
  EXPECT_LE(ledger.peak("sim0", MemoryTag::Weights),
            static_cast<uint64_t>(resident + prefetch + 1) * block_bytes());
  EXPECT_EQ(store.stats().largest_streamed_block, block_bytes());
}

INSTANTIATE_TEST_SUITE_P(Residency, StreamingTest,
                         ::testing::Values(StreamCase{0, 1}, StreamCase{2, 1}, StreamCase{2, 2},
                                           StreamCase{5, 1}));

// Under a budget holding exactly the resident blocks, the upload ring and the one streamed block
// the store keeps free once it measured a step, steady streaming steps take nothing from the
// device (on a GPU: no cudaMalloc or cudaFree, each a device-wide wait) and every resident block
// stays: the ledger's per-step arena counter is flat.
TEST_F(DevicePlansTest, SteadyStreamingStepsTakeNoDeviceMemory) {
  constexpr int kResident = 3, kPrefetch = 1;
  const uint64_t held = Arena::block_size(block_bytes()) * (kResident + kPrefetch + 1 + 1);
  SimulatedDevice budgeted{1, held};
  MemoryPlan plan = on_device(WeightPlacement::Streamed);
  plan.prefetch_depth = kPrefetch;
  plan.resident_block_bytes = kResident * Arena::block_size(block_bytes());
  WeightStore store(*source, ledger, plan, &budgeted);
  store.begin_stage(Stage::Diffusion);
  run_steps(store, 5);
  std::vector<uint64_t> allocations;
  for (const LedgerEntry& e : ledger.entries())
    if (e.event == LedgerEvent::Sample && e.device == "device_allocations")
      allocations.push_back(e.bytes);
  // The first pass learns the order, so the second is the first to fill the ring.
  ASSERT_EQ(allocations.size(), 5u);
  EXPECT_GT(allocations[1], 0u);
  for (size_t i = 2; i < allocations.size(); ++i) EXPECT_EQ(allocations[i], allocations[1]) << i;
  EXPECT_EQ(store.stats().resident_block_bytes, kResident * block_bytes());
  EXPECT_LE(budgeted.backend().arena().stats().peak_reserved, held);
  store.end_stage(Stage::Diffusion);
}

// The planner's activation estimate is an upper bound taken before anything ran; after the
// stage's second step the budget the steps left free (here: room for two more blocks beyond the
// planned resident block and the ring) becomes resident blocks, so later steps stream less. The
// values read stay the same, the budget holds, and a new stage starts from the plan again.
TEST_F(DevicePlansTest, BudgetTheMeasuredStepLeftFreeBecomesResidentBlocks) {
  const uint64_t block = Arena::block_size(block_bytes());
  const uint64_t budget = 6 * block;  // 1 resident + 2 ring + 2 grown + 1 kept free
  SimulatedDevice budgeted{1, budget};
  MemoryPlan plan = on_device(WeightPlacement::Streamed);
  plan.prefetch_depth = 1;
  plan.resident_block_bytes = block;
  plan.device_release = Release::AfterStage;  // as the planner's stream plan does
  WeightStore store(*source, ledger, plan, &budgeted);
  const test::SyntheticStage& s = synthetic_stages()[kDiffusion];
  for (int stage = 0; stage < 2; ++stage) {
    store.begin_stage(Stage::Diffusion);
    for (int step = 0; step < 5; ++step) {
      const size_t step_start = ledger.entries().size();
      for (int b = 0; b < s.blocks; ++b) {
        const std::string prefix = fmt::format(fmt::runtime(s.block_format), b);
        const WeightLease lease = store.lease(s.component, prefix);
        float first;
        std::memcpy(&first, lease.get(prefix + "weight").bytes.data(), 4);
        ASSERT_EQ(first, test::synthetic_base(1, b)) << "step " << step << " block " << b;
      }
      if (step < 2) {
        EXPECT_EQ(store.stats().resident_block_bytes, block_bytes())
            << "stage " << stage << " step " << step;
      }
      store.step_done();
      if (step == 1) {
        EXPECT_EQ(store.stats().planned_resident_bytes, block_bytes()) << "stage " << stage;
        EXPECT_EQ(store.stats().replanned_resident_bytes, 3 * block_bytes()) << "stage " << stage;
      }
      // Three blocks resident, three streamed through a ring of two: three uploads a step.
      if (step > 2) {
        EXPECT_EQ(uploads(ledger, step_start), 3u) << "step " << step;
      }
    }
    EXPECT_EQ(store.stats().resident_block_bytes, 3 * block_bytes());
    store.end_stage(Stage::Diffusion);
    EXPECT_EQ(store.stats().resident_block_bytes, 0u);
  }
  EXPECT_LE(budgeted.backend().arena().stats().peak_reserved, budget);
}

// A steady step (the stage's fourth) is recorded for reports, one record per acquisition in the
// pass's order (the measuring step's until then): the block, its bytes on the device, what all
// but weights held as it was acquired (here an activation held through the first two blocks)
// and whether it stays resident; the simulated device has no compute timings.
TEST_F(DevicePlansTest, TheMeasuredStepIsRecordedPerAcquisition) {
  const uint64_t block = Arena::block_size(block_bytes());
  SimulatedDevice budgeted{1, 8 * block};
  MemoryPlan plan = on_device(WeightPlacement::Streamed);
  plan.prefetch_depth = 1;
  plan.resident_block_bytes = block;
  WeightStore store(*source, ledger, plan, &budgeted);
  const test::SyntheticStage& s = synthetic_stages()[kDiffusion];
  store.begin_stage(Stage::Diffusion);
  for (int step = 0; step < 5; ++step) {
    std::shared_ptr<Storage> activation;
    for (int b = 0; b < s.blocks; ++b) {
      const std::string prefix = fmt::format(fmt::runtime(s.block_format), b);
      const WeightLease lease = store.lease(s.component, prefix);
      (void)lease.get(prefix + "weight");
      if (b == 0)
        activation = budgeted.backend().arena().allocate(block, MemoryTag::Activations, "a");
      if (b == 1) activation.reset();
    }
    store.step_done();
    EXPECT_EQ(store.measured_pass().empty(), step == 0) << "step " << step;
  }
  store.end_stage(Stage::Diffusion);
  const std::vector<MeasuredAcquisition>& pass = store.measured_pass();
  ASSERT_EQ(pass.size(), static_cast<size_t>(s.blocks));
  int resident = 0;
  for (int b = 0; b < s.blocks; ++b) {
    EXPECT_EQ(pass[b].block + ".", fmt::format(fmt::runtime(s.block_format), b));
    EXPECT_EQ(pass[b].bytes, block_bytes());
    EXPECT_FALSE(pass[b].compute_s.has_value());
    EXPECT_EQ(pass[b].others_bytes, b == 1 ? block : 0) << "block " << b;
    resident += pass[b].resident;
  }
  EXPECT_EQ(resident * block_bytes(), store.stats().replanned_resident_bytes);
}

// Where the plan left less than one streamed block free beside the measured step's peak (room
// for an upload that finds the ring full), residency shrinks to make that room.
TEST_F(DevicePlansTest, ResidencyShrinksWhereTheMeasuredStepLeftTooLittleFree) {
  const uint64_t block = Arena::block_size(block_bytes());
  const uint64_t budget = 3 * block + block / 2;  // 1 resident + 2 ring + half a block
  SimulatedDevice budgeted{1, budget};
  MemoryPlan plan = on_device(WeightPlacement::Streamed);
  plan.prefetch_depth = 1;
  plan.resident_block_bytes = block;
  WeightStore store(*source, ledger, plan, &budgeted);
  store.begin_stage(Stage::Diffusion);
  run_steps(store, 3);
  EXPECT_EQ(store.stats().planned_resident_bytes, block_bytes());
  EXPECT_EQ(store.stats().replanned_resident_bytes, 0u);
  EXPECT_EQ(store.stats().resident_block_bytes, 0u);
  store.end_stage(Stage::Diffusion);
  EXPECT_LE(budgeted.backend().arena().stats().peak_reserved, budget);
}

// Resident blocks are spread over the pass, not its first blocks: half the bytes resident means
// every other block, so the copy queue uploads a streamed block while each resident one
// computes instead of idling through a resident prefix once the ring is full.
TEST_F(DevicePlansTest, ResidentBlocksAreSpreadOverThePass) {
  const test::SyntheticStage& s = synthetic_stages()[kDiffusion];
  ASSERT_EQ(s.blocks, 6);
  MemoryPlan plan = on_device(WeightPlacement::Streamed);
  plan.resident_block_bytes = 3 * Arena::block_size(block_bytes());
  WeightStore store(*source, ledger, plan, &device);
  store.begin_stage(Stage::Diffusion);
  std::vector<std::string> moved;
  for (int step = 0; step < 3; ++step) {
    const size_t step_start = ledger.entries().size();
    for (int b = 0; b < s.blocks; ++b) {
      const std::string prefix = fmt::format(fmt::runtime(s.block_format), b);
      const WeightLease lease = store.lease(s.component, prefix);
      (void)lease.get(prefix + "weight");
    }
    moved.clear();
    const auto entries = ledger.entries();
    for (size_t i = step_start; i < entries.size(); ++i)
      if (entries[i].event == LedgerEvent::Upload) moved.push_back(entries[i].block);
  }
  store.end_stage(Stage::Diffusion);
  std::sort(moved.begin(), moved.end());
  const auto key = [&](int b) {
    const std::string prefix = fmt::format(fmt::runtime(s.block_format), b);
    return prefix.substr(0, prefix.size() - 1);  // "input_blocks.1"
  };
  EXPECT_EQ(moved, (std::vector<std::string>{key(1), key(3), key(5)}));
  EXPECT_EQ(store.stats().resident_block_bytes, 3 * block_bytes());
}

TEST_F(DevicePlansTest, StreamingFromOwnedReadsHoldsOnlyTheBlocksInFlightOnTheHost) {
  MemoryPlan plan = on_device(WeightPlacement::Streamed);
  plan.use_mmap = false;
  plan.direct_io = true;
  plan.resident_block_bytes = 2 * block_bytes();
  WeightStore store(*source, ledger, plan, &device);
  test::run_synthetic_pipeline(store);
  test::run_synthetic_pipeline(store);
  // Text encoder and VAE are resident, their host copies gone once uploaded; the diffusion
  // model is read a few blocks at a time: the one computing, the prefetched ones and the one
  // read ahead of their uploads, each buffer starting at its file offset modulo the direct-I/O
  // alignment.
  uint64_t others = 0;
  for (const auto& s : synthetic_stages())
    if (s.stage != Stage::Diffusion) others += s.bytes();
  EXPECT_LE(ledger.peak("cpu", MemoryTag::Weights),
            others + static_cast<uint64_t>(plan.prefetch_depth + 2) * (block_bytes() + 4096));
  EXPECT_GT(device.fenced_uploads(), 0u);  // streamed blocks reuse the upload ring
  EXPECT_EQ(ledger.held("cpu", "diffusion_model"), 0u);
}

// Resident components from owned reads keep no host copy: each block's read buffer goes once
// its upload landed, so the host holds at most two blocks while loading and nothing after.
TEST_F(DevicePlansTest, ResidentOwnedReadsKeepNoHostCopy) {
  uint64_t largest = 0;
  for (const auto& s : synthetic_stages()) largest = std::max(largest, s.block_bytes());
  MemoryPlan plan = on_device();
  plan.use_mmap = false;
  plan.load = LoadWhen::AtStart;
  plan.load_group_bytes = 2 * largest;  // up to two blocks per read
  WeightStore store(*source, ledger, plan, &device);
  // Loaded at start through two reused host buffers, handed back once every block landed.
  EXPECT_EQ(device.host_arena().stats().reserved, 0u);
  EXPECT_GT(device.host_arena().stats().peak_reserved, 0u);
  test::run_synthetic_pipeline(store);
  for (const auto& s : synthetic_stages())
    EXPECT_EQ(ledger.held("cpu", s.component), 0u) << s.component;
  // Two groups in flight (one reading, one uploading), each range starting at its file offset
  // modulo the direct-I/O alignment.
  const uint64_t group = plan.load_group_bytes + 2 * 4096;
  EXPECT_LE(ledger.peak("cpu", MemoryTag::Weights), 2 * group);
  EXPECT_GT(ledger.peak("cpu", MemoryTag::Weights), 2 * largest);  // blocks were grouped
  EXPECT_LE(device.host_arena().stats().peak_reserved, 2 * Arena::block_size(group));
  test::run_synthetic_pipeline(store);  // computes from the device copies alone
}

TEST_F(DevicePlansTest, APlannerSizedBudgetIsNeverExceeded) {
  PlannerInput in;
  in.components = component_footprints(*source, {});
  const uint64_t stage_peak = synthetic_stages()[kDiffusion].bytes();
  in.budget = stage_peak / 2;  // half the diffusion model: it must stream
  const PlannerChoice choice = choose_device_plan(in);
  ASSERT_EQ(choice.kind, DevicePlanKind::Stream);
  MemoryPlan plan;
  apply_device_plan(choice, in, plan);
  SimulatedDevice budgeted(1, in.budget);
  WeightStore store(*source, ledger, plan, &budgeted);
  test::run_synthetic_pipeline(store);
  test::run_synthetic_pipeline(store);
  EXPECT_LE(ledger.peak("sim0", MemoryTag::Weights), in.budget);
  EXPECT_LE(budgeted.backend().arena().stats().peak_reserved, in.budget);
}

// The upload ring is counted in bytes: next to a large block, the small ones that fit in the
// ring with it all upload ahead, not just (prefetch + 1) blocks; every upload of a steady pass
// goes into the ring after a fence, and the ring's bytes still bound what streaming holds.
TEST_F(DevicePlansTest, SmallStreamedBlocksUploadAheadWhileTheyFitInTheRing) {
  constexpr int kSmall = 8, kBlocks = kSmall + 2;                 // large, 8 small, large
  constexpr int64_t kLarge = 64 << 10, kSmallElements = 8 << 10;  // f32: 256 KiB and 32 KiB
  const auto prefix = [](int b) { return fmt::format("input_blocks.{}.", b); };
  const auto base = [](int b) { return static_cast<float>(b) * 65536.0f; };
  std::vector<TensorToWrite> tensors;
  for (int b = 0; b < kBlocks; ++b)
    tensors.push_back(test::f32_tensor("model.diffusion_model." + prefix(b) + "weight",
                                       {b == 0 || b == kBlocks - 1 ? kLarge : kSmallElements},
                                       base(b)));
  const std::string mixed = dir / "mixed.safetensors";
  write_safetensors(mixed, tensors, {}, false);
  const ModelSource mixed_source = ModelSource::open({mixed});
  MemoryPlan plan = on_device(WeightPlacement::Streamed);
  plan.prefetch_depth = 1;
  plan.resident_block_bytes = 0;  // every block streams
  WeightStore store(mixed_source, ledger, plan, &device);
  store.begin_stage(Stage::Diffusion);
  uint64_t fenced = 0;
  size_t pass_start = 0;
  for (int step = 0; step < 3; ++step) {
    fenced = device.fenced_uploads();
    pass_start = ledger.entries().size();
    for (int b = 0; b < kBlocks; ++b) {
      const WeightLease lease = store.lease("diffusion_model", prefix(b));
      const Weight& w = lease.get(prefix(b) + "weight");
      float first;
      std::memcpy(&first, w.bytes.data(), 4);
      ASSERT_EQ(first, base(b)) << "step " << step << " block " << b;
    }
  }
  EXPECT_EQ(uploads(ledger, pass_start), static_cast<uint64_t>(kBlocks));
  EXPECT_EQ(device.fenced_uploads() - fenced, static_cast<uint64_t>(kBlocks));
  store.end_stage(Stage::Diffusion);
  int on_device = 0, most = 0;
  for (const LedgerEntry& e : ledger.entries()) {
    if (e.device != "sim0") continue;
    on_device += e.event == LedgerEvent::Upload ? 1 : e.event == LedgerEvent::Free ? -1 : 0;
    most = std::max(most, on_device);
  }
  // A large block and the eight small ones fill the ring of 2 × 256 KiB exactly.
  EXPECT_EQ(most, kSmall + 1);
  EXPECT_GT(most, plan.prefetch_depth + 1);
  EXPECT_LE(ledger.peak("sim0", MemoryTag::Weights), 2 * uint64_t{kLarge} * 4);
}

}  // namespace
}  // namespace ebb
