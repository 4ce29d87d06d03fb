// The simulated device: uploads land in order on its copy thread with events that complete,
// its arena is the device memory under a budget, and it computes as the CPU backend does.
#include "backend/simulated_device.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "support/expect_error.h"

namespace ebb {
namespace {

TEST(SimulatedDevice, UploadsLandAndCompleteTheirEvents) {
  SimulatedDevice device(1, Arena::kUnlimited);
  std::vector<std::byte> host(1 << 20);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<std::byte>(i * 7);
  const auto storage = device.allocate(host.size(), "test block");
  std::vector<std::shared_ptr<TransferEvent>> events;
  const size_t piece = host.size() / 4;
  for (size_t p = 0; p < 4; ++p)
    events.push_back(
        device.upload({{std::span(host).subspan(p * piece, piece), storage->data() + p * piece}}));
  events.back()->wait();
  for (const auto& e : events) EXPECT_TRUE(e->done());  // one queue: in order
  EXPECT_EQ(std::memcmp(storage->data(), host.data(), host.size()), 0);
  EXPECT_EQ(device.uploaded_bytes(), host.size());
  EXPECT_EQ(device.backend().arena().stats().in_use[static_cast<size_t>(MemoryTag::Weights)],
            Arena::block_size(host.size()));
}

TEST(SimulatedDevice, ItsBudgetCoversWeightsAndActivations) {
  SimulatedDevice device(1, 1 << 20);
  const auto weights = device.allocate(768 << 10, "input_blocks.4");
  test::expect_error_with([&] { (void)device.backend().empty({128 << 10}); }, {"budget"});
  test::expect_error_with([&] { (void)device.allocate(512 << 10, "input_blocks.5"); },
                          {"input_blocks.5"});
}

}  // namespace
}  // namespace ebb
