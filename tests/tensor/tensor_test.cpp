#include "tensor/tensor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "core/error.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

std::shared_ptr<std::vector<float>> iota_buffer(size_t n) {
  auto v = std::make_shared<std::vector<float>>(n);
  std::iota(v->begin(), v->end(), 0.0f);
  return v;
}

Tensor wrap_floats(const std::shared_ptr<std::vector<float>>& v, Shape shape) {
  return Tensor::wrap_mutable(v->data(), v->size() * sizeof(float), DType::F32, std::move(shape),
                              Device::cpu(), v);
}

TEST(Tensor, UndefinedTensorMeansNone) {
  Tensor none;
  EXPECT_FALSE(none.defined());
  EXPECT_EQ(none.describe(), "none");
}

TEST(Tensor, WrapIsZeroCopyAndKeepsItsOwnerAlive) {
  auto buf = iota_buffer(24);
  std::weak_ptr<std::vector<float>> watch = buf;
  const float* data = buf->data();
  Tensor t = wrap_floats(buf, {2, 3, 4});
  buf.reset();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(t.data<float>(), data);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(t.strides(), (Strides{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.describe(), "F32[2, 3, 4]");
  t = Tensor();
  EXPECT_TRUE(watch.expired());
}

TEST(Tensor, ReadOnlyWrapRefusesWrites) {
  const std::vector<float> v(4, 1.0f);
  Tensor t = Tensor::wrap(v.data(), 16, DType::F32, {4}, Device::cpu(), nullptr);
  EXPECT_EQ(t.data<float>()[3], 1.0f);
  EXPECT_THAT([&] { t.mutable_data<float>(); }, ThrowsMessage<Error>(HasSubstr("read-only")));
}

TEST(Tensor, WrapChecksSizeAndAlignment) {
  std::vector<float> v(8);
  EXPECT_THAT([&] { Tensor::wrap(v.data(), 16, DType::F32, {8}, Device::cpu(), nullptr); },
              ThrowsMessage<Error>(HasSubstr("needs 32 bytes")));
  const auto* odd = reinterpret_cast<const std::byte*>(v.data()) + 2;
  EXPECT_THAT([&] { Tensor::wrap(odd, 16, DType::F32, {2}, Device::cpu(), nullptr); },
              ThrowsMessage<Error>(HasSubstr("not aligned to 4 bytes")));
  EXPECT_THAT(
      [&] {
        Tensor::wrap(v.data(), 32, DType::F32, {-1, 8}, Device::cpu(), nullptr);
      },
      ThrowsMessage<Error>(HasSubstr("negative dimension")));
  EXPECT_THAT(
      [&] {
        Tensor::wrap(v.data(), 32, DType::F32, {int64_t(1) << 40, int64_t(1) << 40}, Device::cpu(),
                     nullptr);
      },
      ThrowsMessage<Error>(HasSubstr("too many elements")));
}

TEST(Tensor, QuantizedTensorsAreWholeBlocks) {
  std::vector<std::byte> q(2 * 18);  // two Q4_0 blocks of 32 values
  Tensor t = Tensor::wrap(q.data(), q.size(), DType::Q4_0, {2, 32}, Device::cpu(), nullptr);
  EXPECT_EQ(t.nbytes(), 36u);
  EXPECT_EQ(t.narrow(0, 1, 1).bytes(), q.data() + 18);
  EXPECT_THAT(
      [&] {
        Tensor::wrap(q.data(), q.size(), DType::Q4_0, {2, 16}, Device::cpu(), nullptr);
      },
      ThrowsMessage<Error>(HasSubstr("not whole Q4_0 blocks of 32")));
  EXPECT_THAT([&] { t.narrow(1, 0, 16); }, ThrowsMessage<Error>(HasSubstr("block-quantized")));
  EXPECT_THAT([&] { t.data<float>(); }, ThrowsMessage<Error>(HasSubstr("4-byte elements")));
}

TEST(Tensor, ReshapeInfersOneDimension) {
  Tensor t = wrap_floats(iota_buffer(24), {2, 3, 4});
  EXPECT_EQ(t.reshape({6, -1}).shape(), (Shape{6, 4}));
  EXPECT_EQ(t.reshape({24}).data<float>(), t.data<float>());
  EXPECT_THAT([&] { t.reshape({5, -1}); }, ThrowsMessage<Error>(HasSubstr("cannot hold 24")));
  EXPECT_THAT([&] { t.reshape({-1, -1}); }, ThrowsMessage<Error>(HasSubstr("bad dimension")));
  EXPECT_THAT(
      [&] {
        t.permuted({1, 0, 2}).reshape({24});
      },
      ThrowsMessage<Error>(HasSubstr("not contiguous")));
}

TEST(Tensor, NarrowAndPermuteAreViews) {
  Tensor t = wrap_floats(iota_buffer(24), {2, 3, 4});
  Tensor n = t.narrow(1, 1, 2);
  EXPECT_EQ(n.shape(), (Shape{2, 2, 4}));
  EXPECT_EQ(n.data<float>()[0], 4.0f);
  EXPECT_FALSE(n.is_contiguous());
  EXPECT_TRUE(t.narrow(0, 1, 1).is_contiguous());
  Tensor p = t.permuted({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Strides{1, 12, 4}));
  EXPECT_THAT([&] { t.narrow(1, 2, 2); }, ThrowsMessage<Error>(HasSubstr("outside")));
  EXPECT_THAT([&] { t.permuted({0, 0, 1}); }, ThrowsMessage<Error>(HasSubstr("repeats")));
  EXPECT_THAT([&] { t.permuted({0, 1}); }, ThrowsMessage<Error>(HasSubstr("2 dimensions")));
  EXPECT_THAT([&] { t.dim(3); }, ThrowsMessage<Error>(HasSubstr("out of range")));
  EXPECT_EQ(t.dim(-1), 4);
}

TEST(Tensor, ExpandBroadcastsWithZeroStrides) {
  Tensor t = wrap_floats(iota_buffer(3), {3, 1});
  Tensor e = t.expand({2, 3, 5});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 5}));
  EXPECT_EQ(e.strides(), (Strides{0, 1, 0}));
  EXPECT_THAT([&] { t.expand({2, 5}); }, ThrowsMessage<Error>(HasSubstr("does not broadcast")));
  EXPECT_THAT([&] { t.expand({3}); }, ThrowsMessage<Error>(HasSubstr("more dimensions")));
}

}  // namespace
}  // namespace ebb
