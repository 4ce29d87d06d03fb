// The memory flags as plans: each flag sets what it names, SD_MMAP_FLAGS and --page-cache give
// the hints, --lazy-load says what it implies, and contradictions are explained.
#include "app/memory_flags.h"

#include <gtest/gtest.h>

#include "support/expect_error.h"

namespace ebb {
namespace {

using test::expect_error_with;

MemoryPlan plan_of(const MemoryFlags& flags, const char* env = nullptr) {
  std::vector<std::string> notes;
  return memory_plan_from_flags(flags, env, notes);
}

MemoryFlags parsed(const std::vector<std::string>& argv) {
  CLI::App app;
  MemoryFlags flags;
  add_memory_flags(app, flags);
  std::vector<std::string> reversed(argv.rbegin(), argv.rend());
  app.parse(reversed);
  return flags;
}

TEST(MemoryFlags, DefaultIsLazyFirstUseKeptAndMapped) {
  const MemoryPlan plan = plan_of(parsed({}));
  EXPECT_EQ(plan.load, LoadWhen::FirstUse);
  EXPECT_EQ(plan.release, Release::Never);
  EXPECT_TRUE(plan.use_mmap);
  EXPECT_FALSE(plan.evict_page_cache);
  EXPECT_FALSE(plan.page_cache.willneed);
}

TEST(MemoryFlags, EachFlagSetsItsPlan) {
  EXPECT_EQ(plan_of(parsed({"--eager-load-params"})).load, LoadWhen::AtStart);
  EXPECT_EQ(plan_of(parsed({"--free-params-immediately"})).release, Release::AfterStage);
  const MemoryPlan sequential = plan_of(parsed({"--sequential-load"}));
  EXPECT_EQ(sequential.load, LoadWhen::StageBegin);
  EXPECT_EQ(sequential.release, Release::AfterStage);
  EXPECT_FALSE(plan_of(parsed({"--no-mmap"})).use_mmap);
  EXPECT_TRUE(plan_of(parsed({"--mmap"})).use_mmap);
  const MemoryPlan direct = plan_of(parsed({"--direct-io"}));
  EXPECT_FALSE(direct.use_mmap);
  EXPECT_TRUE(direct.direct_io);
  EXPECT_EQ(plan_of(parsed({"--params-backend", "disk"})).release, Release::AfterUse);
  const MemoryPlan per = plan_of(parsed({"--params-backend", "clip=disk,diffusion=cpu"}));
  EXPECT_EQ(per.release_of("clip_g"), Release::AfterUse);
  EXPECT_EQ(per.release_of("diffusion_model"), Release::Never);
}

TEST(MemoryFlags, LazyLoadFreesEvictsAndSaysItImpliesDontneed) {
  std::vector<std::string> notes;
  const MemoryPlan plan = memory_plan_from_flags(parsed({"--lazy-load"}), nullptr, notes);
  EXPECT_EQ(plan.release, Release::AfterStage);
  EXPECT_TRUE(plan.evict_page_cache);
  EXPECT_TRUE(plan.page_cache.dontneed);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("dontneed"), std::string::npos);
}

TEST(MemoryFlags, PageCacheHintsComeFromTheFlagOrTheEnvironment) {
  EXPECT_TRUE(plan_of({}, "willneed,sequential").page_cache.willneed);
  const MemoryPlan flag_wins = plan_of(parsed({"--page-cache", "populate"}), "willneed");
  EXPECT_TRUE(flag_wins.page_cache.populate);
  EXPECT_FALSE(flag_wins.page_cache.willneed);
  expect_error_with([] { plan_of(parsed({"--page-cache", "often"})); }, {"--page-cache", "often"});
}

TEST(MemoryFlags, ContradictionsAreExplained) {
  expect_error_with(
      [] {
        plan_of(parsed({"--sequential-load", "--eager-load"}));
      },
      {"--sequential-load", "--eager-load", "contradict"});
  expect_error_with(
      [] {
        plan_of(parsed({"--lazy-load", "--eager-load"}));
      },
      {"--lazy-load", "--eager-load"});
  expect_error_with([] { plan_of(parsed({"--direct-io", "--mmap"})); }, {"--direct-io", "--mmap"});
  expect_error_with([] { plan_of(parsed({"--mmap", "--no-mmap"})); }, {"--mmap", "--no-mmap"});
  expect_error_with(
      [] {
        plan_of(parsed({"--stream-layers", "--simulated-device"}));
      },
      {"--stream-layers", "--max-vram"});
  expect_error_with(
      [] {
        plan_of(parsed({"--layer-prefetch-depth", "2"}));
      },
      {"--layer-prefetch-depth", "--stream-layers"});
  expect_error_with([] { plan_of(parsed({"--memory", "small"})); }, {"--memory", "auto"});
}

TEST(MemoryFlags, BadParamsBackendValuesAreNamed) {
  expect_error_with([] { parse_params_backend("ram"); }, {"--params-backend", "ram"});
  expect_error_with([] { parse_params_backend("unet=disk"); }, {"unet"});
  expect_error_with([] { parse_params_backend("clip=disk,clip=cpu"); }, {"clip", "twice"});
  expect_error_with([] { parse_params_backend("clip=disk,vae"); }, {"vae"});
}

}  // namespace
}  // namespace ebb
