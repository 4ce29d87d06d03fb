#include "weights/upload_ring.h"

#include <gtest/gtest.h>

#include "backend/simulated_device.h"
#include "weights/footprint.h"

namespace ebb {
namespace {

constexpr uint64_t kA = kDeviceTensorAlignment;

class UploadRingTest : public ::testing::Test {
 protected:
  SimulatedDevice device{1, Arena::kUnlimited};
  UploadRing ring{device, 10 * kA, "unet"};
};

TEST_F(UploadRingTest, ClaimsFollowEachOtherRoundedToTheAlignment) {
  const auto a = ring.claim(1);
  const auto b = ring.claim(2 * kA + 1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->offset, 0u);
  EXPECT_EQ(a->storage->bytes(), kA);
  EXPECT_EQ(b->offset, kA);
  EXPECT_EQ(b->storage->bytes(), 3 * kA);
  EXPECT_EQ(b->storage->data(), a->storage->data() + kA);  // views of one allocation
  EXPECT_EQ(a->after, nullptr);           // memory never written: after all compute
  EXPECT_FALSE(ring.claim(10 * kA + 1));  // larger than the ring
}

TEST_F(UploadRingTest, AClaimOverlappingAnOccupiedRegionIsRefused) {
  const auto a = ring.claim(4 * kA);
  const auto b = ring.claim(4 * kA);
  ASSERT_TRUE(a && b);
  // 2 × 256 left at the tail: a 3 × 256 claim wraps to the start, where a still is.
  EXPECT_FALSE(ring.claim(3 * kA));
  ring.release(b->offset);
  EXPECT_FALSE(ring.claim(3 * kA));  // b's release does not free a's bytes
  ring.release(a->offset);
  const auto c = ring.claim(3 * kA);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 0u);
  EXPECT_EQ(c->storage->data(), a->storage->data());
}

TEST_F(UploadRingTest, TheTailFitsWithoutWrapping) {
  const auto a = ring.claim(8 * kA);
  ASSERT_TRUE(a);
  const auto b = ring.claim(2 * kA);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->offset, 8 * kA);
}

TEST_F(UploadRingTest, AnUploadWaitsForTheLatestFenceOfTheRegionsItOverwrites) {
  const auto a = ring.claim(3 * kA);
  const auto b = ring.claim(3 * kA);
  const auto c = ring.claim(3 * kA);
  ASSERT_TRUE(a && b && c);
  // Released out of order: b's fence is the latest though b lies before c.
  ring.release(a->offset);
  ring.release(c->offset);
  ring.release(b->offset);
  // Wraps to 0 and covers a and most of b.
  const auto d = ring.claim(5 * kA);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->offset, 0u);
  ASSERT_NE(d->after, nullptr);
  // The remnant of b (bytes 5..6) keeps b's fence; c's region keeps c's.
  const auto e = ring.claim(kA);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->offset, 5 * kA);
  EXPECT_EQ(e->after, d->after);
  const auto f = ring.claim(3 * kA);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->offset, 6 * kA);
  ASSERT_NE(f->after, nullptr);
  EXPECT_NE(f->after, d->after);  // c's fence, not b's
  // Memory past the last claim before wrapping (bytes 9..10) was never written.
  ring.release(d->offset);
  const auto g = ring.claim(kA);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->offset, 9 * kA);
  EXPECT_EQ(g->after, nullptr);
}

TEST_F(UploadRingTest, ViewsKeepTheRingsMemoryAfterTheRing) {
  const uint64_t before = device.backend().arena().stats().in_use_total;
  std::shared_ptr<Storage> view;
  {
    UploadRing local{device, 4 * kA, "unet"};
    EXPECT_EQ(device.backend().arena().stats().in_use_total, before);  // allocated at first claim
    view = local.claim(kA)->storage;
    EXPECT_GT(device.backend().arena().stats().in_use_total, before);
  }
  EXPECT_GT(device.backend().arena().stats().in_use_total, before);
  view->data()[0] = std::byte{1};  // still the ring's memory, writable
  view.reset();
  EXPECT_EQ(device.backend().arena().stats().in_use_total, before);
}

TEST_F(UploadRingTest, ReleasingARegionNotClaimedFails) {
  ASSERT_TRUE(ring.claim(kA));
  EXPECT_THROW(ring.release(kA), std::exception);
}

}  // namespace
}  // namespace ebb
