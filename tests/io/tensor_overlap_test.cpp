#include "io/tensor_overlap.h"

#include <gtest/gtest.h>

#include <vector>

namespace ebb {
namespace {

TensorInfo at(uint64_t offset, uint64_t nbytes) {
  TensorInfo t;
  t.offset = offset;
  t.nbytes = nbytes;
  return t;
}

TEST(TensorOverlap, OrderIsByOffsetWithTiesInGivenOrder) {
  const std::vector<TensorInfo> tensors = {at(30, 4), at(10, 0), at(0, 10), at(10, 4)};
  EXPECT_EQ(order_by_offset(tensors), (std::vector<size_t>{2, 1, 3, 0}));
}

TEST(TensorOverlap, AdjacentAndEmptyTensorsDoNotOverlap) {
  const std::vector<TensorInfo> tensors = {at(0, 8), at(8, 8), at(4, 0), at(16, 0), at(16, 2)};
  EXPECT_FALSE(first_overlap(tensors, order_by_offset(tensors)));
}

TEST(TensorOverlap, NamesTheLaterTensorAndTheOneItOverlaps) {
  // Tensor 1 lies inside tensor 0; tensor 3 starts inside tensor 0 too, but only after 1.
  const std::vector<TensorInfo> tensors = {at(0, 100), at(10, 4), at(200, 1), at(50, 8)};
  const auto overlap = first_overlap(tensors, order_by_offset(tensors));
  ASSERT_TRUE(overlap);
  EXPECT_EQ(overlap->tensor, 1u);
  EXPECT_EQ(overlap->earlier, 0u);
}

TEST(TensorOverlap, SameOffsetOverlapsInGivenOrder) {
  const std::vector<TensorInfo> tensors = {at(0, 4), at(0, 4)};
  const auto overlap = first_overlap(tensors, order_by_offset(tensors));
  ASSERT_TRUE(overlap);
  EXPECT_EQ(overlap->tensor, 1u);
  EXPECT_EQ(overlap->earlier, 0u);
}

}  // namespace
}  // namespace ebb
