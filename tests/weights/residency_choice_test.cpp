// Which streamed blocks stay resident once a step was measured: the least compute per uploaded
// byte first, whole bands of it while they fit, the band the budget runs out in spread over the
// pass, and never more than the limit.
#include "weights/residency_choice.h"

#include <gtest/gtest.h>

#include <random>

namespace ebb {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::vector<bool> resident_of(const std::vector<BlockCost>& pass, uint64_t limit) {
  return choose_resident(pass, limit);
}

TEST(ResidencyChoice, UnmeasuredBlocksAreSpreadOverThePassByBytes) {
  const std::vector<BlockCost> pass(6, BlockCost{kMiB, std::nullopt});
  EXPECT_EQ(resident_of(pass, 3 * kMiB),
            (std::vector<bool>{true, false, true, false, true, false}));
  EXPECT_EQ(resident_of(pass, 6 * kMiB), std::vector<bool>(6, true));
  EXPECT_EQ(resident_of(pass, 0), std::vector<bool>(6, false));
}

// A UNet pass: compute-heavy high-resolution blocks (10 ms per MiB) at both ends around
// low-resolution layers (1 ms per MiB). The layers stay resident; the high-resolution blocks,
// whose copies their own compute covers, stream.
TEST(ResidencyChoice, TheLeastComputePerByteStaysResident) {
  std::vector<BlockCost> pass;
  for (int i = 0; i < 2; ++i) pass.push_back({kMiB, 10e-3});
  for (int i = 0; i < 4; ++i) pass.push_back({4 * kMiB, 4e-3});
  for (int i = 0; i < 2; ++i) pass.push_back({kMiB, 10e-3});
  EXPECT_EQ(resident_of(pass, 16 * kMiB),
            (std::vector<bool>{false, false, true, true, true, true, false, false}));
  // Half the layers' bytes: every other layer, so each streamed one uploads while a resident
  // one computes.
  EXPECT_EQ(resident_of(pass, 8 * kMiB),
            (std::vector<bool>{false, false, true, false, true, false, false, false}));
  // Room beyond the layers goes to the next band, spread over it.
  EXPECT_EQ(resident_of(pass, 18 * kMiB),
            (std::vector<bool>{true, false, true, true, true, true, true, false}));
}

TEST(ResidencyChoice, MeasurementNoiseWithinABandDoesNotSplitIt) {
  std::vector<BlockCost> pass;
  const double jitter[] = {1.00, 1.12, 0.93, 1.05, 0.97, 1.10};
  for (double j : jitter) pass.push_back({kMiB, 1e-3 * j});
  // A spread, as if the blocks had been measured alike, not the three that measured fastest.
  EXPECT_EQ(resident_of(pass, 3 * kMiB),
            (std::vector<bool>{true, false, true, false, true, false}));
}

// A block that uploads twice a step when streamed (it comes before and after layers the ring
// cannot hold with it) costs its bytes twice: it stays resident before blocks that upload once,
// measured or not.
TEST(ResidencyChoice, BlocksThatUploadTwiceStayResidentFirst) {
  std::vector<BlockCost> pass(6, BlockCost{kMiB, std::nullopt});
  pass[4].uploads = 2;
  EXPECT_EQ(resident_of(pass, kMiB), (std::vector<bool>{false, false, false, false, true, false}));
  for (BlockCost& b : pass) b.compute_s = 1e-3;
  EXPECT_EQ(resident_of(pass, kMiB), (std::vector<bool>{false, false, false, false, true, false}));
  // Twice the compute per byte and twice the uploads: one band with the others.
  pass[4].compute_s = 2e-3;
  EXPECT_EQ(resident_of(pass, 3 * kMiB),
            (std::vector<bool>{true, false, true, false, true, false}));
}

TEST(ResidencyChoice, NeverMoreThanTheLimit) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint64_t> size(1, 64 * kMiB);
  std::uniform_real_distribution<double> seconds(1e-5, 1e-2);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BlockCost> pass;
    uint64_t total = 0;
    for (int i = 0; i < 40; ++i) {
      pass.push_back({size(rng), trial % 3 ? std::optional<double>(seconds(rng)) : std::nullopt});
      total += pass.back().bytes;
    }
    const uint64_t limit = std::uniform_int_distribution<uint64_t>(0, total)(rng);
    const std::vector<bool> kept = resident_of(pass, limit);
    uint64_t held = 0;
    for (size_t i = 0; i < pass.size(); ++i) held += kept[i] ? pass[i].bytes : 0;
    EXPECT_LE(held, limit) << "trial " << trial;
  }
}

}  // namespace
}  // namespace ebb
