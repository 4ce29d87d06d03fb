// `ebb inspect` as a user runs it: the real binary on a synthetic checkpoint; data on stdout,
// errors on stderr with exit status 1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_command.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

using test::CommandResult;
using test::run_command;
using ::testing::HasSubstr;

const std::string kBin = EBB_BINARY_DIR;

TEST(InspectCommand, DescribesASyntheticSdxlCheckpoint) {
  test::TempDir dir;
  const std::string model = dir / "sdxl.safetensors";
  ASSERT_EQ(run_command(kBin + "/ebb-synth sdxl --size tiny -o " + model + " 2>/dev/null").status,
            0);

  CommandResult text = run_command(kBin + "/ebb inspect " + model + " 2>/dev/null");
  ASSERT_EQ(text.status, 0);
  EXPECT_THAT(text.out, HasSubstr("architecture  SDXL"));
  EXPECT_THAT(text.out, HasSubstr("clip_g"));

  CommandResult json =
      run_command(kBin + "/ebb inspect --json --tensors " + model + " 2>/dev/null");
  ASSERT_EQ(json.status, 0);
  nlohmann::json j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["architecture"], "SDXL");
  size_t listed = j["tensors"].size();
  EXPECT_EQ(listed, j["total_tensors"].get<size_t>());
  uint64_t component_bytes = 0;
  for (const auto& c : j["components"]) component_bytes += c["bytes"].get<uint64_t>();
  EXPECT_EQ(component_bytes, j["total_bytes"].get<uint64_t>());
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "label_emb.0.0.weight") {
      EXPECT_EQ(t["component"], "diffusion_model");
    }
  }
}

TEST(InspectCommand, BadInputIsOneErrorOnStderrWithStatusOne) {
  test::TempDir dir;
  const std::string bad = dir / "truncated.safetensors";
  std::ofstream(bad) << std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\"", 12);
  CommandResult r = run_command(kBin + "/ebb inspect " + bad + " 2>&1 >/dev/null");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.out, HasSubstr("ebb: error: "));
  EXPECT_THAT(r.out, HasSubstr(bad));
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "expected exactly one line: " << r.out;

  CommandResult missing = run_command(kBin + "/ebb inspect 2>&1 >/dev/null");
  EXPECT_NE(missing.status, 0);
  EXPECT_THAT(missing.out, HasSubstr("give a model file"));
}

}  // namespace
}  // namespace ebb
