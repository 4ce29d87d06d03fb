// The simulated device: uploads land in order on its copy thread with events that complete,
// its arena is the device memory under a budget, and it computes as the CPU backend does.
#include "backend/simulated_device.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <numeric>
#include <thread>
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
    events.push_back(device.upload(
        {{std::span(host).subspan(p * piece, piece), storage->data() + p * piece}}, nullptr));
  events.back()->wait();
  for (const auto& e : events) EXPECT_TRUE(e->done());  // one queue: in order
  EXPECT_EQ(std::memcmp(storage->data(), host.data(), host.size()), 0);
  EXPECT_EQ(device.uploaded_bytes(), host.size());
  EXPECT_EQ(device.backend().arena().stats().in_use[static_cast<size_t>(MemoryTag::Weights)],
            Arena::block_size(host.size()));
}

TEST(SimulatedDevice, AnUploadWaitsForItsFenceAndLaterOnesQueueBehindIt) {
  SimulatedDevice device(1, Arena::kUnlimited);
  const auto source = device.host_buffer(4096);
  std::memset(source->data(), 0x5a, source->bytes());
  const auto storage = device.allocate(2 * 4096, "test block");
  std::memset(storage->data(), 0, storage->bytes());
  auto fence = std::make_shared<HostEvent>();
  const auto fenced = device.upload({{{source->data(), 4096}, storage->data(), source}}, fence);
  const auto behind =
      device.upload({{{source->data(), 4096}, storage->data() + 4096, source}}, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(fenced->done());
  EXPECT_FALSE(behind->done());  // one queue, in order
  EXPECT_EQ(storage->data()[0], std::byte{0});
  fence->complete();
  device.finish_uploads();
  EXPECT_TRUE(fenced->done());
  EXPECT_TRUE(behind->done());
  EXPECT_EQ(storage->data()[0], std::byte{0x5a});
  EXPECT_EQ(storage->data()[4096], std::byte{0x5a});
  EXPECT_EQ(device.fenced_uploads(), 1u);
  EXPECT_EQ(device.unfenced_uploads(), 1u);
  EXPECT_TRUE(device.compute_fence()->done());  // its compute runs on the calling thread
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
