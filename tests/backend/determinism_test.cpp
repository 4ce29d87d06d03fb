// For a fixed thread count every op gives the same bits whatever memory its operands live in:
// arena blocks, read-only wrapped memory (as a mapped file), buffers at odd offsets.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "op_test_util.h"

namespace ebb {
namespace {

// Copies of `values` at several byte offsets inside one buffer, each wrapped read-only.
class Placements {
 public:
  static constexpr size_t kOffsets[] = {0, 4, 8, 12, 20, 36, 60};

  Placements(const std::vector<float>& values, const Shape& shape)
      : buffer_(std::make_shared<std::vector<std::byte>>(values.size() * 4 + 128)),
        values_(values),
        shape_(shape) {}

  Tensor at(size_t offset) const {
    std::byte* p = buffer_->data() + offset;
    std::memcpy(p, values_.data(), values_.size() * sizeof(float));
    return Tensor::wrap(p, values_.size() * sizeof(float), DType::F32, shape_, Device::cpu(),
                        buffer_);
  }

 private:
  std::shared_ptr<std::vector<std::byte>> buffer_;
  std::vector<float> values_;
  Shape shape_;
};

using Op = std::function<Tensor(CpuBackend&, const std::vector<Tensor>&)>;

// Runs `op` on arena copies, then on wrapped copies at every offset (each operand at its own
// buffer, all at that offset), twice; all outputs must match bit for bit.
void expect_same_bits(const std::vector<std::pair<std::vector<float>, Shape>>& operands,
                      const Op& op) {
  CpuBackend be(3);
  std::vector<Tensor> dense;
  std::vector<Placements> placed;
  for (const auto& [values, shape] : operands) {
    dense.push_back(test::upload(be, shape, values));
    placed.emplace_back(values, shape);
  }
  const std::vector<float> reference = test::download(be, op(be, dense));
  for (int run = 0; run < 2; ++run) {
    for (size_t offset : Placements::kOffsets) {
      std::vector<Tensor> args;
      for (const Placements& p : placed) args.push_back(p.at(offset));
      const std::vector<float> out = test::download(be, op(be, args));
      ASSERT_EQ(out.size(), reference.size());
      ASSERT_EQ(0, std::memcmp(out.data(), reference.data(), out.size() * sizeof(float)))
          << "operands at byte offset " << offset << ", run " << run;
    }
  }
}

TEST(Determinism, Linear) {
  expect_same_bits({{test::random_floats(77 * 771, 1), {77, 771}},
                    {test::random_floats(333 * 771, 2), {333, 771}},
                    {test::random_floats(333, 3), {333}}},
                   [](CpuBackend& be, const auto& t) { return be.linear(t[0], t[1], t[2]); });
}

TEST(Determinism, Conv2d) {
  expect_same_bits({{test::random_floats(2 * 19 * 13 * 11, 4), {2, 19, 13, 11}},
                    {test::random_floats(23 * 19 * 9, 5), {23, 19, 3, 3}},
                    {test::random_floats(23, 6), {23}}},
                   [](CpuBackend& be, const auto& t) { return be.conv2d(t[0], t[1], t[2], 2, 1); });
  expect_same_bits({{test::random_floats(19 * 13 * 11, 7), {1, 19, 13, 11}},
                    {test::random_floats(23 * 19, 8), {23, 19, 1, 1}}},
                   [](CpuBackend& be, const auto& t) { return be.conv2d(t[0], t[1], {}, 1, 0); });
}

TEST(Determinism, Norms) {
  const auto x = test::random_floats(2 * 48 * 103, 9, -4.0f, 6.0f);
  const auto g = test::random_floats(48, 10), b = test::random_floats(48, 11);
  expect_same_bits({{x, {2, 48, 103}}, {g, {48}}, {b, {48}}}, [](CpuBackend& be, const auto& t) {
    return be.group_norm(t[0], 16, t[1], t[2], 1e-5f);
  });
  const auto rows = test::random_floats(29 * 1027, 12, -4.0f, 6.0f);
  const auto gd = test::random_floats(1027, 13), bd = test::random_floats(1027, 14);
  expect_same_bits(
      {{rows, {29, 1027}}, {gd, {1027}}, {bd, {1027}}},
      [](CpuBackend& be, const auto& t) { return be.layer_norm(t[0], t[1], t[2], 1e-6f); });
  expect_same_bits({{rows, {29, 1027}}, {gd, {1027}}},
                   [](CpuBackend& be, const auto& t) { return be.rms_norm(t[0], t[1], 1e-6f); });
}

TEST(Determinism, Elementwise) {
  expect_same_bits(
      {{test::random_floats(3 * 37 * 41, 15), {3, 37, 41}}, {test::random_floats(37, 16), {37, 1}}},
      [](CpuBackend& be, const auto& t) { return be.add(t[0], t[1]); });
  expect_same_bits(
      {{test::random_floats(3 * 37 * 41, 17), {3, 37, 41}}, {test::random_floats(41, 18), {41}}},
      [](CpuBackend& be, const auto& t) { return be.mul(t[0], t[1]); });
}

TEST(Determinism, AttentionAndActivations) {
  expect_same_bits(
      {{test::random_floats(2 * 45 * 96, 19), {2, 45, 96}},
       {test::random_floats(2 * 29 * 96, 20), {2, 29, 96}},
       {test::random_floats(2 * 29 * 96, 21), {2, 29, 96}},
       {test::random_floats(45 * 29, 22), {45, 29}}},
      [](CpuBackend& be, const auto& t) { return be.attention(t[0], t[1], t[2], 3, t[3]); });
  expect_same_bits({{test::random_floats(7 * 130, 23, -5.0f, 5.0f), {7, 130}}},
                   [](CpuBackend& be, const auto& t) { return be.geglu(t[0]); });
  expect_same_bits({{test::random_floats(7 * 131, 24, -5.0f, 5.0f), {7, 131}}},
                   [](CpuBackend& be, const auto& t) { return be.softmax(be.silu(t[0])); });
}

}  // namespace
}  // namespace ebb
