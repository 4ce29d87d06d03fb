// Host-side merging of strided dimensions before GPU launches (backend/cuda/kernels/
// strided_shape.h): what merges, what must not, and the errors. Needs no GPU.
#include "backend/cuda/kernels/strided_shape.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"

namespace ebb::cuda {
namespace {

TEST(StridedShape, MergesDimensionsEveryOperandWalksAsOne) {
  const int64_t sizes[] = {2, 3, 4};
  const int64_t dense[] = {12, 4, 1};
  const StridedShape<2> s = collapse_dims<2>("test", sizes, {dense, dense}, 3);
  ASSERT_EQ(s.rank, 1);
  EXPECT_EQ(s.size[0], 24);
  EXPECT_EQ(s.stride[0][0], 1);
  EXPECT_EQ(s.stride[1][0], 1);
}

TEST(StridedShape, KeepsBroadcastAndPermutedDimensionsApart) {
  // out dense [2, 320, 81]; bias [320] broadcast over batch and pixels.
  const int64_t sizes[] = {2, 320, 9, 9};
  const int64_t out[] = {320 * 81, 81, 9, 1};
  const int64_t bias[] = {0, 1, 0, 0};
  const StridedShape<2> s = collapse_dims<2>("test", sizes, {out, bias}, 4);
  ASSERT_EQ(s.rank, 3);
  EXPECT_EQ(std::vector<int64_t>(s.size, s.size + 3), (std::vector<int64_t>{2, 320, 81}));
  EXPECT_EQ(std::vector<int64_t>(s.stride[1], s.stride[1] + 3), (std::vector<int64_t>{0, 1, 0}));

  // A transpose merges nothing.
  const int64_t t_sizes[] = {5, 7};
  const int64_t t_dst[] = {7, 1}, t_src[] = {1, 5};
  EXPECT_EQ((collapse_dims<2>("test", t_sizes, {t_dst, t_src}, 2).rank), 2);
}

TEST(StridedShape, DropsSizeOneDimensionsAndEmptyShapes) {
  const int64_t sizes[] = {1, 6, 1};
  const int64_t strides[] = {99, 1, 77};
  const StridedShape<1> s = collapse_dims<1>("test", sizes, {strides}, 3);
  ASSERT_EQ(s.rank, 1);
  EXPECT_EQ(s.size[0], 6);
  EXPECT_EQ(s.elements(), 6);

  const int64_t empty[] = {3, 0, 2};
  EXPECT_EQ((collapse_dims<1>("test", empty, {strides}, 3).elements()), 0);
  EXPECT_EQ((collapse_dims<1>("test", sizes, {strides}, 0).elements()), 1);
}

TEST(StridedShape, RejectsNegativeSizesAndTooManyDimensions) {
  const int64_t negative[] = {2, -1};
  const int64_t strides[] = {1, 1};
  EXPECT_THROW(collapse_dims<1>("test", negative, {strides}, 2), Error);
  const int64_t sizes[] = {2, 2, 2, 2, 2, 2, 2};
  const int64_t a[] = {0, 1, 0, 1, 0, 1, 0}, b[] = {1, 0, 1, 0, 1, 0, 1};
  try {
    collapse_dims<2>("elementwise", sizes, {a, b}, 7);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "elementwise: more than 6 dimensions after merging contiguous ones");
  }
}

}  // namespace
}  // namespace ebb::cuda
