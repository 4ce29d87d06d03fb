// The GPU broadcasting add/mul against a naive strided reference for f32, f16 and bf16
// storage: dense operands, NCHW bias broadcast, a scalar, permuted (transposed) views, six
// dimensions that do not merge, in place, and rank 0. Outputs are NaN-poisoned first. Skips
// without CUDA or without a device.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaElementwise, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <string>
#include <vector>

#include "backend/cuda/kernels/elementwise.h"
#include "core/error.h"
#include "support/cuda_kernel_test_support.h"

namespace ebb {
namespace {

using test::DeviceArray;

struct Case {
  std::string name;
  std::vector<int64_t> sizes;
  std::vector<int64_t> a_strides, b_strides;  // into buffers of a_len and b_len elements
  int64_t a_len, b_len;
};

std::vector<int64_t> dense(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> s(sizes.size());
  int64_t n = 1;
  for (size_t d = sizes.size(); d-- > 0;) {
    s[d] = n;
    n *= sizes[d];
  }
  return s;
}

int64_t count(const std::vector<int64_t>& sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

std::vector<float> reference(cuda::ElementwiseOp op, const Case& c, const std::vector<float>& a,
                             const std::vector<float>& b) {
  std::vector<float> out(count(c.sizes));
  for (int64_t i = 0; i < int64_t(out.size()); ++i) {
    int64_t rest = i, ao = 0, bo = 0;
    for (size_t d = c.sizes.size(); d-- > 0;) {
      const int64_t k = rest % c.sizes[d];
      rest /= c.sizes[d];
      ao += k * c.a_strides[d];
      bo += k * c.b_strides[d];
    }
    out[i] = op == cuda::ElementwiseOp::Add ? a[ao] + b[bo] : a[ao] * b[bo];
  }
  return out;
}

std::vector<Case> cases() {
  std::vector<Case> cs;
  cs.push_back({"dense", {3, 5, 7}, dense({3, 5, 7}), dense({3, 5, 7}), 105, 105});
  cs.push_back(
      {"bias over NCHW", {2, 320, 9, 9}, dense({2, 320, 9, 9}), {0, 1, 0, 0}, 2 * 320 * 81, 320});
  cs.push_back({"scalar", {4, 1031}, dense({4, 1031}), {0, 0}, 4 * 1031, 1});
  // a is a [7, 6, 5] buffer read as its transpose [5, 6, 7]; b broadcasts a row.
  cs.push_back({"transposed", {5, 6, 7}, {1, 5, 30}, {0, 0, 1}, 210, 7});
  // Six dimensions, broadcasts in alternate ones, no two neighbours mergeable.
  cs.push_back(
      {"six dims", {2, 3, 4, 3, 2, 5}, {720, 0, 30, 0, 3, 6}, {0, 40, 0, 10, 5, 1}, 1440, 120});
  cs.push_back({"odd inner, sliced rows", {9, 13}, {16, 1}, {13, 1}, 9 * 16, 9 * 13});
  cs.push_back({"large",
                {2, 640, 64, 64},
                dense({2, 640, 64, 64}),
                {640, 1, 0, 0},
                2 * 640 * 4096,
                2 * 640});
  return cs;
}

template <class T>
class CudaElementwise : public test::CudaStreamTest {};
TYPED_TEST_SUITE(CudaElementwise, test::StorageTypes, test::StorageTypeNames);

TYPED_TEST(CudaElementwise, MatchesReference) {
  using T = TypeParam;
  uint32_t seed = 1;
  for (const Case& c : cases()) {
    const auto a = test::rounded<T>(test::random_floats(c.a_len, seed++));
    const auto b = test::rounded<T>(test::random_floats(c.b_len, seed++));
    DeviceArray<T> da(a), db(b), dout(count(c.sizes));
    for (auto op : {cuda::ElementwiseOp::Add, cuda::ElementwiseOp::Mul}) {
      dout.poison();
      cuda::elementwise(op, da.get(), c.a_strides.data(), db.get(), c.b_strides.data(), dout.get(),
                        c.sizes.data(), int(c.sizes.size()), this->stream_);
      this->sync();
      test::expect_close(dout.download(), test::rounded<T>(reference(op, c, a, b)),
                         test::storage_tolerance<T>(),
                         std::string(test::storage_name<T>()) + " " + c.name +
                             (op == cuda::ElementwiseOp::Add ? " add" : " mul"));
    }
  }
}

TYPED_TEST(CudaElementwise, InPlaceAndRankZero) {
  using T = TypeParam;
  const std::vector<int64_t> sizes = {3, 1, 517};
  const auto a = test::rounded<T>(test::random_floats(3 * 517, 3));
  const auto b = test::rounded<T>(test::random_floats(517, 4));
  const Case c{"in place", sizes, dense(sizes), {0, 0, 1}, 3 * 517, 517};
  DeviceArray<T> da(a), db(b);
  cuda::elementwise(cuda::ElementwiseOp::Add, da.get(), c.a_strides.data(), db.get(),
                    c.b_strides.data(), da.get(), sizes.data(), 3, this->stream_);
  this->sync();
  test::expect_close(da.download(), test::rounded<T>(reference(cuda::ElementwiseOp::Add, c, a, b)),
                     test::storage_tolerance<T>(), "in place");

  DeviceArray<T> x(std::vector<float>{1.5f}), y(std::vector<float>{-4.0f}), out(1);
  out.poison();
  cuda::elementwise(cuda::ElementwiseOp::Mul, x.get(), nullptr, y.get(), nullptr, out.get(),
                    nullptr, 0, this->stream_);
  this->sync();
  EXPECT_EQ(out.download(), std::vector<float>{-6.0f});
}

TEST(CudaElementwiseArguments, RejectsBadShapes) {
  float* p = nullptr;
  const int64_t sizes[7] = {2, 2, 2, 2, 2, 2, 2};
  const int64_t strides[7] = {0, 1, 0, 1, 0, 1, 0};
  const int64_t other[7] = {1, 0, 1, 0, 1, 0, 1};
  // Seven dimensions that cannot merge.
  EXPECT_THROW(
      cuda::elementwise(cuda::ElementwiseOp::Add, p, strides, p, other, p, sizes, 7, nullptr),
      Error);
  const int64_t negative[2] = {2, -1};
  EXPECT_THROW(
      cuda::elementwise(cuda::ElementwiseOp::Add, p, strides, p, other, p, negative, 2, nullptr),
      Error);
  const int64_t empty[2] = {2, 0};
  EXPECT_NO_THROW(
      cuda::elementwise(cuda::ElementwiseOp::Add, p, strides, p, other, p, empty, 2, nullptr));
}

}  // namespace
}  // namespace ebb

#endif  // EBB_HAVE_CUDA
