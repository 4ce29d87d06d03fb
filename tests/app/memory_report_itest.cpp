// `ebb generate` with memory flags as a user runs it on the tiny SD1 checkpoint: the PNG is the
// same bytes under a memory plan as without, one summary line follows each image,
// --memory-report writes the ledger with its summary, `ebb report` draws it, device plans on
// the simulated device keep the PNG, and an impossible budget or contradictory flags fail
// before anything loads, with the reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_command.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

using test::run_command;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kEbb = std::string(EBB_BINARY_DIR) + "/ebb";
const std::string kModel = std::string(EBB_TEST_DATA_DIR) + "/sd/sd1-tiny.safetensors";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string generate(const std::string& output, const std::string& extra) {
  return kEbb + " generate -m " + kModel + " -p 'a red cube' -W 64 -H 64 --steps 2 -s 7 -o " +
         output + " " + extra + " 2>&1";
}

TEST(MemoryReportCommand, PlansKeepThePngAndTheReportDescribesTheRun) {
  test::TempDir dir;
  const test::CommandResult plain = run_command(generate(dir / "plain.png", ""));
  ASSERT_EQ(plain.status, 0) << plain.out;
  const std::string report = dir / "ledger.json";
  const test::CommandResult planned = run_command(
      generate(dir / "planned.png", "--sequential-load --no-mmap -b 2 --memory-report " + report));
  ASSERT_EQ(planned.status, 0) << planned.out;
  EXPECT_EQ(read_file(dir / "planned.png"), read_file(dir / "plain.png"));
  size_t lines = 0;
  for (size_t at = planned.out.find("memory: cpu"); at != std::string::npos;
       at = planned.out.find("memory: cpu", at + 1))
    ++lines;
  EXPECT_EQ(lines, 2u);

  const nlohmann::json ledger = nlohmann::json::parse(read_file(report));
  const nlohmann::json& summary = ledger.at("summary");
  EXPECT_EQ(summary.at("steps"), 4);
  EXPECT_GT(summary.at("peak_device_bytes").at("cpu").at("weights").get<uint64_t>(), 0u);
  EXPECT_GT(summary.at("peak_rss_anon_bytes").get<uint64_t>(), 0u);
  EXPECT_GT(summary.at("total_s").get<double>(), 0.0);

  const test::CommandResult drawn =
      run_command(kEbb + " report " + report + " -o " + (dir / "timeline.svg") + " 2>&1");
  ASSERT_EQ(drawn.status, 0) << drawn.out;
  EXPECT_THAT(read_file(dir / "timeline.svg"), HasSubstr("<svg"));
}

TEST(MemoryReportCommand, DevicePlansOnTheSimulatedDeviceKeepThePng) {
  test::TempDir dir;
  const test::CommandResult plain = run_command(generate(dir / "plain.png", ""));
  ASSERT_EQ(plain.status, 0) << plain.out;
  const test::CommandResult streamed = run_command(
      generate(dir / "streamed.png",
               "--simulated-device --stream-layers --layer-prefetch-depth 2 --max-vram 0.5"));
  ASSERT_EQ(streamed.status, 0) << streamed.out;
  EXPECT_THAT(streamed.out, HasSubstr("plan: stream-layers"));
  EXPECT_THAT(streamed.out, HasSubstr("memory: sim0"));
  EXPECT_EQ(read_file(dir / "streamed.png"), read_file(dir / "plain.png"));
  const test::CommandResult offload =
      run_command(generate(dir / "offload.png", "--simulated-device --offload-to-cpu"));
  ASSERT_EQ(offload.status, 0) << offload.out;
  EXPECT_EQ(read_file(dir / "offload.png"), read_file(dir / "plain.png"));
}

TEST(MemoryReportCommand, AnImpossibleBudgetFailsBeforeLoading) {
  test::TempDir dir;
  const test::CommandResult r =
      run_command(generate(dir / "x.png", "--simulated-device --max-vram 0.001"));
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.out, HasSubstr("no memory plan fits the device budget of 1.0 MiB"));
  EXPECT_THAT(r.out, HasSubstr("the smallest budget that works is"));
  EXPECT_THAT(r.out, Not(HasSubstr("step 1/2")));
  EXPECT_FALSE(std::filesystem::exists(dir / "x.png"));
}

TEST(MemoryReportCommand, ContradictoryFlagsAreRefusedBeforeLoading) {
  test::TempDir dir;
  const test::CommandResult r =
      run_command(generate(dir / "x.png", "--sequential-load --eager-load"));
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.out, HasSubstr("--sequential-load and --eager-load contradict each other"));
  EXPECT_FALSE(std::filesystem::exists(dir / "x.png"));
}

}  // namespace
}  // namespace ebb
