// The implicit-GEMM 3x3 convolution (kernels/conv3x3.h) at every 3x3 stride-1 shape of the
// SD1.5 and SDXL UNets (batch 2: CFG) and the VAE decoder, in F16 and BF16: against the CUDA
// backend's im2col + GEMM over the whole output and against a float64 reference at sampled
// outputs (computed from the same rounded inputs on the host), into an output poisoned with NaN
// first, and bit-identical run to run. Also every tile shape on partial tiles, bands of rows
// under a small scratch bound, conv2d against the CPU on either path (the kernel where the rule
// picks it, im2col + batched GEMM elsewhere and where the kernel does not apply), and the
// plan's choices. Skips without a GPU.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(Conv3x3, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/kernels/conv3x3.h"
#include "backend/op_test_util.h"
#include "support/cuda_test_support.h"
#include "tensor/float_convert.h"

namespace ebb {
namespace {

using cuda::Conv3x3Shape;
using test::relative_error;

// ‖implicit − im2col‖ / ‖im2col‖: both round f32 sums of different order to the dtype.
double tolerance(DType t) {
  return t == DType::F16 ? 2e-3 : 1.6e-2;
}

// One rounding of the output to the dtype, relative.
double rounding(DType t) {
  return t == DType::F16 ? 1.0 / 1024 : 1.0 / 128;
}

std::vector<float> rounded_values(DType t, size_t n, uint32_t seed) {
  std::vector<float> v = test::random_floats(n, seed);
  for (float& x : v) x = t == DType::F16 ? f16_to_f32(f32_to_f16(x)) : bf16_to_f32(f32_to_bf16(x));
  return v;
}

std::vector<float> to_floats(DType t, const std::vector<uint16_t>& bits) {
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i)
    out[i] = t == DType::F16 ? f16_to_f32(bits[i]) : bf16_to_f32(bits[i]);
  return out;
}

struct Case {
  const char* model;
  Conv3x3Shape s;  // batch, channels in, height, width, channels out
};

Case unet(int64_t in, int64_t out, int64_t size) {
  return {"UNet", {2, in, size, size, out}};
}
Case vae(int64_t in, int64_t out, int64_t size) {
  return {"VAE", {1, in, size, size, out}};
}

// Resnet convolutions (the up blocks' take the skip connections concatenated), upsamplers and
// the output convolutions.
const Case kShapes[] = {
    // SD1.5 at 512² (latent 64²)
    unet(320, 320, 64), unet(320, 640, 32), unet(640, 640, 32), unet(640, 1280, 16),
    unet(1280, 1280, 16), unet(1280, 1280, 8), unet(2560, 1280, 8), unet(2560, 1280, 16),
    unet(1920, 1280, 16), unet(1920, 640, 32), unet(1280, 640, 32), unet(960, 640, 32),
    unet(960, 320, 64), unet(640, 320, 64), unet(320, 4, 64),
    // SDXL at 1024² (latent 128²)
    unet(320, 320, 128), unet(960, 320, 128), unet(640, 320, 128), unet(640, 640, 128),
    unet(320, 640, 64), unet(640, 640, 64), unet(1280, 640, 64), unet(960, 640, 64),
    unet(1280, 1280, 64), unet(640, 1280, 32), unet(1280, 1280, 32), unet(2560, 1280, 32),
    unet(1920, 1280, 32), unet(320, 4, 128),
    // VAE decoder at 512²
    vae(512, 512, 64), vae(512, 512, 128), vae(512, 512, 256), vae(512, 256, 256),
    vae(256, 256, 256), vae(256, 256, 512), vae(256, 128, 512), vae(128, 128, 512),
    vae(128, 3, 512)};

class Conv3x3Test : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    std::string why;
    if (!test::device_present(why)) GTEST_SKIP() << why;
    gpu = make(false, CudaBackendOptions{}.max_im2col_bytes);
  }

  std::unique_ptr<CudaBackend> make(bool implicit, uint64_t max_scratch) const {
    CudaBackendOptions options;
    options.activation_dtype = GetParam();
    options.implicit_conv = implicit;
    options.max_im2col_bytes = max_scratch;
    return std::make_unique<CudaBackend>(options);
  }

  // The implicit kernel's output bits of `s` on `x`, `w`, `b` (device tensors of `gpu`), into
  // an output of NaN.
  std::vector<uint16_t> implicit(const Conv3x3Shape& s, const Tensor& x, const Tensor& w,
                                 const Tensor& b, uint64_t max_scratch, int tiling) {
    const cuda::Conv3x3Plan plan = cuda::conv3x3_plan(s, 2, max_scratch, tiling);
    EXPECT_GT(plan.band_rows, 0);
    const size_t outputs = static_cast<size_t>(s.batch * s.outputs * s.height * s.width);
    test::DeviceBuffer out(outputs * 2), shifted(plan.shifted_elems * 2),
        partials(std::max<int64_t>(plan.partial_floats, 1) * 4);
    // The backend's stream does not synchronise with the legacy default stream.
    test::cuda_check(cudaMemsetAsync(out.get(), 0xFF, outputs * 2, gpu->stream()), "cudaMemset");
    cuda::Conv3x3Args a;
    a.dtype = GetParam();
    a.shape = s;
    a.x = x.bytes();
    a.w = w.bytes();
    a.bias = b.defined() ? b.bytes() : nullptr;
    a.out = out.get();
    a.shifted = shifted.get();
    a.partials = partials.get<float>();
    cuda::conv3x3(plan, a, gpu->stream());
    gpu->synchronize();
    std::vector<uint16_t> bits(outputs);
    test::cuda_check(cudaMemcpy(bits.data(), out.get(), outputs * 2, cudaMemcpyDeviceToHost),
                     "cudaMemcpy");
    return bits;
  }

  // Compares the implicit kernel with im2col + GEMM over every output and with a float64 sum at
  // `samples` outputs; checks a second run gives the same bits.
  void check(const Case& c, uint32_t seed, bool bias, uint64_t max_scratch, int samples,
             int tiling = -1) {
    const DType t = GetParam();
    const Conv3x3Shape& s = c.s;
    ASSERT_TRUE(cuda::conv3x3_applies(s));
    const Shape x_shape{s.batch, s.channels, s.height, s.width};
    const Shape w_shape{s.outputs, s.channels, 3, 3};
    const std::vector<float> xv = rounded_values(t, shape_numel(x_shape), seed);
    const std::vector<float> wv = rounded_values(t, shape_numel(w_shape), seed + 1);
    const std::vector<float> bv = rounded_values(t, static_cast<size_t>(s.outputs), seed + 2);
    const Tensor x = gpu->from_floats(x_shape, xv);
    const Tensor w = gpu->from_floats(w_shape, wv);
    const Tensor b = bias ? gpu->from_floats({s.outputs}, bv) : Tensor{};
    const std::string what = std::string(c.model) + " " + std::to_string(s.batch) + "x" +
                             std::to_string(s.channels) + "->" + std::to_string(s.outputs) + " @" +
                             std::to_string(s.height) + "x" + std::to_string(s.width) + " tiling " +
                             std::to_string(tiling);

    const std::vector<uint16_t> bits = implicit(s, x, w, b, max_scratch, tiling);
    const std::vector<float> got = to_floats(t, bits);
    const std::vector<float> ref = gpu->to_floats(gpu->conv2d(x, w, b, 1, 1));
    EXPECT_LE(relative_error(got, ref), tolerance(t)) << what << " against im2col";

    std::mt19937 rng(seed);
    int bad = 0;
    for (int i = 0; i < samples; ++i) {
      const int64_t n = rng() % s.batch, o = rng() % s.outputs, y = rng() % s.height,
                    xo = rng() % s.width;
      double sum = bias ? bv[o] : 0.0, magnitude = 0;
      for (int64_t ci = 0; ci < s.channels; ++ci)
        for (int64_t ky = 0; ky < 3; ++ky)
          for (int64_t kx = 0; kx < 3; ++kx) {
            const int64_t iy = y + ky - 1, ix = xo + kx - 1;
            if (iy < 0 || iy >= s.height || ix < 0 || ix >= s.width) continue;
            const double term = double(wv[((o * s.channels + ci) * 3 + ky) * 3 + kx]) *
                                xv[((n * s.channels + ci) * s.height + iy) * s.width + ix];
            sum += term;
            magnitude += term * term;
          }
      const double out = got[((n * s.outputs + o) * s.height + y) * s.width + xo];
      if (!(std::abs(out - sum) <= rounding(t) * (std::abs(sum) + std::sqrt(magnitude)))) ++bad;
    }
    EXPECT_EQ(bad, 0) << what << ": sampled outputs off the float64 sum";
    EXPECT_EQ(implicit(s, x, w, b, max_scratch, tiling), bits) << what << ": run to run";
  }

  std::unique_ptr<CudaBackend> gpu;
};

INSTANTIATE_TEST_SUITE_P(Activations, Conv3x3Test, ::testing::Values(DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

constexpr uint64_t kScratch = CudaBackendOptions{}.max_im2col_bytes;

TEST_P(Conv3x3Test, EveryStableDiffusionShape) {
  uint32_t seed = 100;
  for (const Case& c : kShapes) {
    check(c, seed, true, kScratch, 256);
    seed += 10;
  }
}

TEST_P(Conv3x3Test, PartialTilesAndNoBias) {
  // Pixel counts off the tile width, output channels off 128, a height off everything.
  check({"odd", {2, 320, 24, 40, 320}}, 1, false, kScratch, 512);
  check({"odd", {1, 64, 13, 16, 192}}, 2, true, kScratch, 512);
  check({"odd", {3, 32, 5, 8, 64}}, 3, true, kScratch, 512);
}

TEST_P(Conv3x3Test, EveryTiling) {
  // A partial tile of each kind, with and without a split reduction.
  for (int tiling = 0; tiling < cuda::conv3x3_tilings(); ++tiling) {
    check({"tiling", {2, 320, 24, 40, 320}}, 5, true, kScratch, 128, tiling);
    check({"tiling", {2, 640, 8, 8, 128}}, 6, true, kScratch, 128, tiling);
  }
}

TEST_P(Conv3x3Test, BandsOfRowsUnderASmallScratchBound) {
  const Case c{"banded", {2, 320, 37, 64, 320}};
  const cuda::Conv3x3Plan plan = cuda::conv3x3_plan(c.s, 2, 1 << 20);
  EXPECT_LT(plan.band_rows, c.s.height);
  EXPECT_LE(plan.shifted_elems * 2, 1 << 20);
  check(c, 4, true, 1 << 20, 512);
}

TEST_P(Conv3x3Test, Conv2dOnEitherPathMatchesTheCpu) {
  const DType t = GetParam();
  std::unique_ptr<CudaBackend> fast = make(true, kScratch);
  CpuBackend cpu{4};
  struct Other {
    Shape x;
    int64_t outputs;
  };
  // Input channels off 32 (conv_in) and width off 8 (im2col), few outputs (conv_out: the
  // kernel), a UNet resnet's (im2col, batched).
  const Other others[] = {
      {{2, 4, 32, 32}, 320}, {{2, 320, 16, 16}, 4}, {{1, 64, 12, 12}, 64}, {{2, 320, 32, 32}, 320}};
  uint32_t seed = 50;
  for (const Other& o : others) {
    const Shape w_shape{o.outputs, o.x[1], 3, 3};
    const Conv3x3Shape s{o.x[0], o.x[1], o.x[2], o.x[3], o.outputs};
    EXPECT_EQ(cuda::conv3x3_applies(s), o.x[1] % 32 == 0 && o.x[3] % 8 == 0);
    const std::vector<float> xv = rounded_values(t, shape_numel(o.x), seed);
    const std::vector<float> wv = rounded_values(t, shape_numel(w_shape), seed + 1);
    const std::vector<float> bv = rounded_values(t, static_cast<size_t>(o.outputs), seed + 2);
    const std::vector<float> expected =
        cpu.to_floats(cpu.conv2d(cpu.from_floats(o.x, xv), cpu.from_floats(w_shape, wv),
                                 cpu.from_floats({o.outputs}, bv), 1, 1));
    const Tensor out = fast->conv2d(fast->from_floats(o.x, xv), fast->from_floats(w_shape, wv),
                                    fast->from_floats({o.outputs}, bv), 1, 1);
    EXPECT_LE(relative_error(fast->to_floats(out), expected), tolerance(t)) << o.x[1];
    seed += 10;
  }
}

TEST(Conv3x3Plan, RunsWhereItBeatsIm2col) {
  EXPECT_TRUE(cuda::conv3x3_beats_im2col({1, 128, 1024, 1024, 128}));  // VAE
  EXPECT_TRUE(cuda::conv3x3_beats_im2col({1, 128, 1024, 1024, 3}));    // VAE conv_out
  EXPECT_TRUE(cuda::conv3x3_beats_im2col({2, 1280, 8, 8, 1280}));      // UNet 8²
  EXPECT_TRUE(cuda::conv3x3_beats_im2col({2, 960, 128, 128, 320}));    // UNet 1024², level 1
  EXPECT_FALSE(cuda::conv3x3_beats_im2col({2, 320, 64, 64, 320}));
  EXPECT_FALSE(cuda::conv3x3_beats_im2col({2, 640, 128, 128, 640}));
  EXPECT_FALSE(cuda::conv3x3_beats_im2col({2, 1280, 32, 32, 1280}));
  EXPECT_FALSE(cuda::conv3x3_beats_im2col({1, 512, 256, 256, 512}));
}

TEST(Conv3x3Plan, SplitsOnlyWhereTilesLeaveSmsIdle) {
  // SD1.5's smallest UNet convolution: 40 tiles, so the reduction is split.
  const cuda::Conv3x3Plan small = cuda::conv3x3_plan({2, 1280, 8, 8, 1280}, 2, kScratch);
  EXPECT_GT(small.splits, 1);
  EXPECT_EQ(small.partial_floats, small.splits * 2 * 1280 * 64);
  const cuda::Conv3x3Plan large = cuda::conv3x3_plan({2, 320, 128, 128, 320}, 2, kScratch);
  EXPECT_EQ(large.splits, 1);
  EXPECT_EQ(large.partial_floats, 0);
  EXPECT_EQ(large.band_rows, 128);
  EXPECT_EQ(large.tiling, 0);  // 320 channels fill the widest tiles well enough at 128²
  // The VAE's largest at 1024²: the copies of one band stay under the bound.
  const cuda::Conv3x3Plan vae = cuda::conv3x3_plan({1, 128, 1024, 1024, 128}, 2, kScratch);
  EXPECT_LT(vae.band_rows, 1024);
  EXPECT_LE(vae.shifted_elems * 2, kScratch);
  EXPECT_EQ(cuda::conv3x3_plan({1, 512, 64, 64, 512}, 2, 1000).band_rows, 0);
}

}  // namespace
}  // namespace ebb

#endif
