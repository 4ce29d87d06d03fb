// CPU ops on fresh random inputs against the naive references of op_test_util.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "op_test_util.h"

namespace ebb {
namespace {

using test::download;
using test::random_floats;
using test::relative_error;
using test::upload;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kF32Tolerance = 1e-5;

class CpuOps : public ::testing::TestWithParam<int> {
 protected:
  CpuBackend be{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(Threads, CpuOps, ::testing::Values(1, 3),
                         [](const auto& info) { return fmt::format("t{}", info.param); });

TEST_P(CpuOps, LinearMatchesNaive) {
  struct Case {
    Shape x;
    int64_t n;
    bool bias;
  };
  const Case cases[] = {{{2, 77, 768}, 320, true},
                        {{1, 5}, 1, false},
                        {{3, 1}, 7, true},
                        {{1, 64}, 130, true},
                        {{33, 96}, 40, false}};
  uint32_t seed = 1;
  for (const Case& c : cases) {
    const int64_t k = c.x.back(), m = shape_numel(c.x) / k;
    const auto x = random_floats(m * k, seed++), w = random_floats(c.n * k, seed++);
    const auto b = c.bias ? random_floats(c.n, seed++) : std::vector<float>{};
    Tensor out = be.linear(upload(be, c.x, x), upload(be, {c.n, k}, w),
                           c.bias ? upload(be, {c.n}, b) : Tensor{});
    Shape expected = c.x;
    expected.back() = c.n;
    EXPECT_EQ(out.shape(), expected);
    EXPECT_LE(relative_error(download(be, out), test::linear_ref(x, w, b, m, k, c.n)),
              kF32Tolerance)
        << shape_str(c.x) << " -> " << c.n;
  }
}

TEST_P(CpuOps, LinearWithEmptyInputDimensionGivesTheBias) {
  const auto b = random_floats(3, 9);
  Tensor x = be.empty({2, 0});
  Tensor out = be.linear(x, be.empty({3, 0}), upload(be, {3}, b));
  const auto y = download(be, out);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], b[i % 3]);
}

TEST_P(CpuOps, Conv2dMatchesNaive) {
  using test::ConvCase;
  const ConvCase cases[] = {
      {2, 8, 9, 7, 6, 3, 3, Conv2dGeometry::uniform(1, 1)},    // UNet 3×3
      {1, 5, 10, 11, 4, 3, 3, Conv2dGeometry::uniform(2, 1)},  // downsample
      {2, 12, 6, 5, 7, 1, 1, Conv2dGeometry::uniform(1, 0)},   // 1×1 skip
      {1, 3, 8, 8, 5, 3, 3, {2, 0, 0, 1, 1}},                  // VAE encoder: pad right/bottom
      {1, 2, 5, 6, 3, 5, 3, {1, 2, 0, 1, 3}},                  // uneven kernel and padding
      {1, 4, 3, 2, 2, 1, 1, Conv2dGeometry::uniform(2, 1)},    // strided 1×1 with padding
      {1, 2, 1, 1, 2, 3, 3, {1, 0, 0, 2, 2}},                  // kernel reaches past the image
      // depth 4608 × 1024 pixels needs more than one column tile
      {1, 512, 32, 32, 3, 3, 3, Conv2dGeometry::uniform(1, 1)},
  };
  uint32_t seed = 100;
  for (const ConvCase& c : cases) {
    const auto x = random_floats(c.n * c.c * c.h * c.w, seed++);
    const auto w = random_floats(c.o * c.c * c.kh * c.kw, seed++);
    const auto b = seed % 2 ? random_floats(c.o, seed) : std::vector<float>{};
    ++seed;
    Tensor out =
        be.conv2d(upload(be, {c.n, c.c, c.h, c.w}, x), upload(be, {c.o, c.c, c.kh, c.kw}, w),
                  b.empty() ? Tensor{} : upload(be, {c.o}, b), c.g);
    EXPECT_EQ(out.shape(), (Shape{c.n, c.o, c.out_h(), c.out_w()}));
    EXPECT_LE(relative_error(download(be, out), test::conv2d_ref(c, x, w, b)), kF32Tolerance)
        << "case with " << c.c << " channels, kernel " << c.kh << "x" << c.kw;
  }
}

TEST_P(CpuOps, NormsMatchNaive) {
  // An offset far from zero checks that the variance does not cancel away.
  const auto x = random_floats(2 * 64 * 5 * 6, 7, 99.0f, 101.0f);
  const auto gamma = random_floats(64, 8), beta = random_floats(64, 9);
  Tensor xt = upload(be, {2, 64, 5, 6}, x);
  Tensor g = upload(be, {64}, gamma), b = upload(be, {64}, beta);
  EXPECT_LE(relative_error(download(be, be.group_norm(xt, 32, g, b, 1e-6f)),
                           test::group_norm_ref(x, 2, 64, 30, 32, gamma, beta, 1e-6)),
            kF32Tolerance);
  EXPECT_LE(relative_error(download(be, be.group_norm(xt, 8, {}, {}, 1e-5f)),
                           test::group_norm_ref(x, 2, 64, 30, 8, {}, {}, 1e-5)),
            kF32Tolerance);

  const auto rows = random_floats(37 * 64, 10, -3.0f, 5.0f);
  Tensor r = upload(be, {37, 64}, rows);
  EXPECT_LE(relative_error(download(be, be.layer_norm(r, g, b, 1e-5f)),
                           test::row_norm_ref(rows, 64, false, gamma, beta, 1e-5)),
            kF32Tolerance);
  EXPECT_LE(relative_error(download(be, be.layer_norm(r, {}, {}, 1e-6f)),
                           test::row_norm_ref(rows, 64, false, {}, {}, 1e-6)),
            kF32Tolerance);
  EXPECT_LE(relative_error(download(be, be.rms_norm(r, g, 1e-6f)),
                           test::row_norm_ref(rows, 64, true, gamma, {}, 1e-6)),
            kF32Tolerance);
  EXPECT_LE(relative_error(download(be, be.rms_norm(r.reshape({37, 2, 32}), {}, 1e-6f)),
                           test::row_norm_ref(rows, 32, true, {}, {}, 1e-6)),
            kF32Tolerance);
}

// Index of the element of a broadcast operand of shape `s` behind output index `idx`.
int64_t broadcast_index(const Shape& out, const Shape& s, int64_t idx) {
  int64_t result = 0, step = 1;
  for (int i = int(out.size()) - 1, j = int(s.size()) - 1; i >= 0; --i, --j) {
    const int64_t coord = idx % out[i];
    idx /= out[i];
    if (j >= 0) {
      if (s[j] != 1) result += coord * step;
      step *= s[j];
    }
  }
  return result;
}

TEST_P(CpuOps, AddAndMulBroadcast) {
  const std::pair<Shape, Shape> cases[] = {{{2, 6, 4, 5}, {1, 6, 1, 1}},
                                           {{3, 7, 20}, {20}},
                                           {{4, 1, 3}, {1, 5, 1}},
                                           {{9}, {9}},
                                           {{1}, {2, 3}},
                                           {{}, {2, 2}}};
  uint32_t seed = 200;
  for (const auto& [sa, sb] : cases) {
    const auto a = random_floats(shape_numel(sa), seed++),
               b = random_floats(shape_numel(sb), seed++);
    Tensor ta = upload(be, sa, a), tb = upload(be, sb, b);
    Tensor sum = be.add(ta, tb), prod = be.mul(tb, ta);
    const auto ys = download(be, sum), yp = download(be, prod);
    const Shape& out = sum.shape();
    for (int64_t i = 0; i < shape_numel(out); ++i) {
      const float u = a[broadcast_index(out, sa, i)], v = b[broadcast_index(out, sb, i)];
      ASSERT_EQ(ys[i], u + v) << shape_str(sa) << " + " << shape_str(sb) << " at " << i;
      ASSERT_EQ(yp[i], v * u) << shape_str(sa) << " * " << shape_str(sb) << " at " << i;
    }
  }
}

TEST_P(CpuOps, BinaryOpsReadStridedViews) {
  const auto a = random_floats(4 * 6 * 5, 300), b = random_floats(6 * 4, 301);
  Tensor ta = upload(be, {4, 6, 5}, a);
  Tensor view = ta.permuted({2, 0, 1}).narrow(1, 1, 2);  // [5, 2, 6], no dense dimension
  Tensor tb = upload(be, {6, 4}, b).permuted({1, 0}).narrow(0, 1, 2);  // [2, 6]
  const auto y = download(be, be.add(view, tb));
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t k = 0; k < 6; ++k)
        ASSERT_EQ(y[(i * 2 + j) * 6 + k], a[((j + 1) * 6 + k) * 5 + i] + b[k * 4 + j + 1]);
}

TEST_P(CpuOps, LayoutOpsMoveElementsExactly) {
  const auto x = random_floats(2 * 3 * 4 * 5, 400);
  Tensor t = upload(be, {2, 3, 4, 5}, x);
  const auto p = download(be, be.permute(t, {0, 2, 3, 1}));
  for (int64_t i = 0; i < 2 * 3 * 4 * 5; ++i) {
    const int64_t n = i / 60, h = i / 15 % 4, w = i / 3 % 5, c = i % 3;
    ASSERT_EQ(p[i], x[((n * 3 + c) * 4 + h) * 5 + w]);
  }

  const auto parts = be.split(t, {1, 0, 2, 1}, 2);
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[2].shape(), (Shape{2, 3, 2, 5}));
  EXPECT_EQ(parts[1].numel(), 0);
  const Tensor back = be.concat(parts, -2);
  EXPECT_EQ(download(be, back), x);

  const auto y = random_floats(2 * 2 * 4 * 5, 401);
  const auto cat = download(be, be.concat({t, upload(be, {2, 2, 4, 5}, y)}, 1));
  for (int64_t n = 0; n < 2; ++n) {
    EXPECT_EQ(0, std::memcmp(&cat[n * 100], &x[n * 60], 60 * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(&cat[n * 100 + 60], &y[n * 40], 40 * sizeof(float)));
  }

  const auto up = download(be, be.upsample_nearest2x(t));
  for (int64_t i = 0; i < 2 * 3 * 8 * 10; ++i) {
    const int64_t plane = i / 80, oy = i / 10 % 8, ox = i % 10;
    ASSERT_EQ(up[i], x[plane * 20 + oy / 2 * 5 + ox / 2]);
  }
}

TEST_P(CpuOps, LayoutOpsTakeAnyPlainDtype) {
  std::vector<uint16_t> h(24);
  for (size_t i = 0; i < h.size(); ++i) h[i] = uint16_t(i * 7);
  Tensor t = be.empty({2, 3, 4}, DType::F16);
  be.write(t, h.data(), 48);
  Tensor p = be.permute(t, {2, 1, 0});
  std::vector<uint16_t> out(24);
  be.read(p, out.data(), 48);
  for (int64_t i = 0; i < 24; ++i) ASSERT_EQ(out[i], h[(i % 2) * 12 + (i / 2 % 3) * 4 + i / 6]);
}

TEST_P(CpuOps, BadShapesNameTheOpAndOperands) {
  Tensor x = be.empty({2, 8}), w = be.empty({4, 6}), img = be.empty({1, 3, 8, 8});
  EXPECT_THAT([&] { be.linear(x, w, {}); },
              ThrowsMessage<Error>(
                  AllOf(HasSubstr("linear"), HasSubstr("F32[2, 8]"), HasSubstr("F32[4, 6]"))));
  EXPECT_THAT(
      [&] {
        be.linear(x, be.empty({4, 8}), be.empty({3}));
      },
      ThrowsMessage<Error>(AllOf(HasSubstr("linear: b F32[3]"), HasSubstr("[4]"))));
  EXPECT_THAT(
      [&] {
        be.conv2d(img, be.empty({4, 2, 3, 3}), {}, 1, 1);
      },
      ThrowsMessage<Error>(AllOf(HasSubstr("conv2d"), HasSubstr("F32[4, 2, 3, 3]"))));
  EXPECT_THAT(
      [&] {
        be.conv2d(img, be.empty({4, 3, 9, 9}), {}, 1, 0);
      },
      ThrowsMessage<Error>(HasSubstr("does not fit")));
  EXPECT_THAT(
      [&] {
        be.conv2d(img, be.empty({4, 3, 3, 3}), {}, 0, 1);
      },
      ThrowsMessage<Error>(HasSubstr("stride 0")));
  EXPECT_THAT(
      [&] { be.group_norm(img, 2, {}, {}, 1e-5f); },
      ThrowsMessage<Error>(HasSubstr("group_norm: x F32[1, 3, 8, 8] cannot be split into 2")));
  EXPECT_THAT([&] { be.layer_norm(x, be.empty({7}), {}, 1e-5f); },
              ThrowsMessage<Error>(HasSubstr("layer_norm: gamma F32[7]")));
  EXPECT_THAT([&] { be.add(x, w); },
              ThrowsMessage<Error>(AllOf(HasSubstr("add"), HasSubstr("do not broadcast"))));
  EXPECT_THAT(
      [&] {
        be.concat({x, w}, 0);
      },
      ThrowsMessage<Error>(HasSubstr("concat: F32[2, 8] and F32[4, 6] differ")));
  EXPECT_THAT([&] { be.split(x, {3, 4}, 1); }, ThrowsMessage<Error>(HasSubstr("add up to 7")));
  EXPECT_THAT([&] { be.permute(x, {0, 2}); }, ThrowsMessage<Error>(HasSubstr("out of range")));
  EXPECT_THAT([&] { be.upsample_nearest2x(x); },
              ThrowsMessage<Error>(HasSubstr("upsample_nearest2x")));
  EXPECT_THAT(
      [&] {
        be.linear(be.empty({8, 2}).permuted({1, 0}), be.empty({4, 8}), {});
      },
      ThrowsMessage<Error>(HasSubstr("strided view")));
}

TEST_P(CpuOps, UnsupportedDtypesAndDevicesAreErrors) {
  Tensor x16 = be.empty({2, 8}, DType::F16);
  EXPECT_THAT(
      [&] {
        be.linear(x16, be.empty({4, 8}), {});
      },
      ThrowsMessage<Error>(
          AllOf(HasSubstr("linear on cpu does not support"), HasSubstr("x F16[2, 8]"))));
  EXPECT_THAT([&] { be.add(x16, x16); }, ThrowsMessage<Error>(HasSubstr("add on cpu")));
  Tensor q = be.empty({4, 32}, DType::Q8_0);
  EXPECT_THAT([&] { be.permute(q, {1, 0}); }, ThrowsMessage<Error>(HasSubstr("block-quantized")));
  float dummy[8] = {};
  Tensor remote = Tensor::wrap(dummy, sizeof dummy, DType::F32, {2, 4}, Device::cuda(0), nullptr);
  EXPECT_THAT([&] { be.rms_norm(remote, {}, 1e-6f); },
              ThrowsMessage<Error>(AllOf(HasSubstr("rms_norm: x F32[2, 4] is on cuda0"),
                                         HasSubstr("computes on cpu"))));
  EXPECT_THAT([&] { be.write(be.empty({2}), dummy, 4); },
              ThrowsMessage<Error>(HasSubstr("4 bytes given")));
}

TEST_P(CpuOps, RepeatedStepsAllocateNothingNew) {
  // A small UNet-like step: conv, group norm, SiLU, a time embedding added, attention-style
  // projections; the second and later steps must be served from the arena's cache.
  Tensor x = upload(be, {1, 32, 16, 16}, random_floats(32 * 256, 500));
  Tensor w = upload(be, {32, 32, 3, 3}, random_floats(32 * 32 * 9, 501));
  Tensor emb = upload(be, {1, 32, 1, 1}, random_floats(32, 502));
  Tensor proj = upload(be, {32, 32}, random_floats(32 * 32, 503));
  auto step = [&] {
    Tensor h = be.silu(be.group_norm(be.conv2d(x, w, {}, 1, 1), 8, {}, {}, 1e-5f));
    h = be.add(h, emb);
    Tensor tokens = be.permute(h, {0, 2, 3, 1}).reshape({1, 256, 32});
    return be.linear(tokens, proj, {});
  };
  const std::vector<float> first = download(be, step());
  const uint64_t allocations = be.arena().stats().device_allocations;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(download(be, step()), first);
  EXPECT_EQ(be.arena().stats().device_allocations, allocations);
}

TEST_P(CpuOps, OutOfBudgetNamesTheOp) {
  CpuBackend small(GetParam(), 1 << 20);
  Tensor x = small.empty({200, 64}), w = small.empty({1024, 64});  // 50 + 256 KiB
  EXPECT_THAT([&] { small.linear(x, w, {}); },                     // 800 KiB more
              ThrowsMessage<Error>(AllOf(HasSubstr("linear needs 800.0 KiB of activations"),
                                         HasSubstr("budget is 1.0 MiB"))));
}

}  // namespace
}  // namespace ebb
