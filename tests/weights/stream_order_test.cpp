#include "weights/stream_order.h"

#include <gtest/gtest.h>

#include <vector>

namespace ebb {
namespace {

void acquire(StreamOrder& order, const std::vector<uint32_t>& blocks) {
  for (uint32_t b : blocks) order.acquired(b);
}

TEST(StreamOrder, PredictsNothingBeforeAWholePass) {
  StreamOrder order;
  acquire(order, {0, 1, 2});
  EXPECT_EQ(order.pass_length(), 0u);
  EXPECT_FALSE(order.ahead(1));
}

TEST(StreamOrder, FollowsThePreviousPassAndWrapsToItsStart) {
  StreamOrder order;
  acquire(order, {0, 1, 2, 3, 0});
  EXPECT_EQ(order.pass_length(), 4u);
  EXPECT_EQ(order.ahead(1), 1u);
  EXPECT_EQ(order.ahead(3), 3u);
  order.acquired(1);
  EXPECT_EQ(order.ahead(3), 0u);  // the next pass's first block
}

// A spatial transformer's projections come before and after its layers: a successor per block
// would predict the block after the second visit at the first.
TEST(StreamOrder, ABlockTwiceInAPassIsPredictedByPosition) {
  StreamOrder order;
  acquire(order, {0, 5, 6, 7, 5, 8, 0});
  order.acquired(5);
  EXPECT_EQ(order.ahead(1), 6u);
  acquire(order, {6, 7, 5});
  EXPECT_EQ(order.ahead(1), 8u);
}

TEST(StreamOrder, RepeatsInARowCountOnce) {
  StreamOrder order;
  acquire(order, {0, 0, 1, 1, 2, 0});
  EXPECT_EQ(order.pass_length(), 3u);
  EXPECT_EQ(order.ahead(1), 1u);
}

TEST(StreamOrder, ABranchNotTakenBeforeResynchronises) {
  StreamOrder order;
  acquire(order, {0, 1, 2, 3, 0});
  order.acquired(2);  // 1 skipped: found further on
  EXPECT_EQ(order.ahead(1), 3u);
  order.acquired(9);  // never seen: nothing predicted
  EXPECT_FALSE(order.ahead(1));
}

TEST(StreamOrder, ANewStageStartsAtThePassStartAndKeepsWhatWasLearned) {
  StreamOrder order;
  acquire(order, {0, 1, 2});
  order.end_stage();  // a stage of one pass: that pass is the order
  EXPECT_EQ(order.pass_length(), 3u);
  order.acquired(0);
  EXPECT_EQ(order.ahead(2), 2u);
}

}  // namespace
}  // namespace ebb
