// conv2d through cuDNN against the CUDA backend's own im2col + GEMM and against the CPU backend,
// at Stable Diffusion's shapes (3x3 stride 1 and 2, 1x1, with and without bias) in F32, F16 and
// BF16, and bit-identical outputs for the same inputs run to run and across backends (a fresh
// algorithm choice). Outputs are poisoned with NaN first. Skips without a GPU or without cuDNN.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudnnConv, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend_factory.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cudnn_conv.h"
#include "backend/op_test_util.h"
#include "support/cuda_test_support.h"
#include "tensor/float_convert.h"

namespace ebb {
namespace {

using test::relative_error;

// As cuda_backend_gputest: f32 differs by summation order; f16 and bf16 round every output.
double tolerance(DType t) {
  return t == DType::F32 ? 1e-5 : t == DType::F16 ? 2e-3 : 1.6e-2;
}

std::vector<float> rounded_values(DType t, size_t n, uint32_t seed) {
  std::vector<float> v = test::random_floats(n, seed);
  for (float& x : v)
    x = t == DType::F16    ? f16_to_f32(f32_to_f16(x))
        : t == DType::BF16 ? bf16_to_f32(f32_to_bf16(x))
                           : x;
  return v;
}

struct ConvCase {
  const char* what;
  Shape x;
  int64_t outputs, kernel;
  Conv2dGeometry g;
  bool bias;
};

// SD1.x/SDXL UNet and VAE convolutions at small spatial sizes.
const ConvCase kCases[] = {
    {"UNet conv_in", {2, 4, 64, 64}, 320, 3, Conv2dGeometry::uniform(1, 1), true},
    {"resnet 3x3", {2, 320, 32, 32}, 320, 3, Conv2dGeometry::uniform(1, 1), true},
    {"resnet 3x3 without bias", {1, 640, 16, 16}, 640, 3, Conv2dGeometry::uniform(1, 1), false},
    {"UNet downsample", {2, 320, 32, 32}, 320, 3, Conv2dGeometry::uniform(2, 1), true},
    {"resnet 1x1 shortcut", {2, 320, 32, 32}, 640, 1, Conv2dGeometry::uniform(1, 0), true},
    {"1x1 without bias", {1, 512, 32, 32}, 512, 1, Conv2dGeometry::uniform(1, 0), false},
    {"VAE conv_in (rgb)", {1, 3, 64, 64}, 128, 3, Conv2dGeometry::uniform(1, 1), true},
    {"UNet conv_out", {2, 320, 32, 32}, 4, 3, Conv2dGeometry::uniform(1, 1), true},
    // cuDNN pads symmetrically: this one runs as im2col on either backend.
    {"VAE downsample (asymmetric)", {1, 128, 32, 32}, 128, 3, {2, 0, 0, 1, 1}, true},
};

class CudnnConvTest : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    std::string why;
    if (!test::device_present(why)) GTEST_SKIP() << why;
    if (!cuda::cudnn_loaded()) GTEST_SKIP() << cuda::cudnn_description();
    cudnn = make(true);
    im2col = make(false);
    ASSERT_TRUE(cudnn->uses_cudnn());
    ASSERT_FALSE(im2col->uses_cudnn());
  }

  std::unique_ptr<CudaBackend> make(bool use_cudnn) const {
    CudaBackendOptions options;
    options.activation_dtype = GetParam();
    options.use_cudnn = use_cudnn;
    return std::make_unique<CudaBackend>(options);
  }

  // conv2d of `c` on `be` with the inputs of `seed`; the output starts as NaN.
  Tensor conv(Backend& be, const ConvCase& c, uint32_t seed) {
    const DType t = GetParam();
    const Shape w_shape{c.outputs, c.x[1], c.kernel, c.kernel};
    const Tensor x = be.from_floats(c.x, rounded_values(t, shape_numel(c.x), seed));
    const Tensor w = be.from_floats(w_shape, rounded_values(t, shape_numel(w_shape), seed + 1));
    const Tensor b =
        c.bias ? be.from_floats({c.outputs}, rounded_values(t, c.outputs, seed + 2)) : Tensor{};
    const Shape out_shape{c.x[0], c.outputs,
                          (c.x[2] + c.g.pad_top + c.g.pad_bottom - c.kernel) / c.g.stride + 1,
                          (c.x[3] + c.g.pad_left + c.g.pad_right - c.kernel) / c.g.stride + 1};
    const Tensor poison = be.empty(out_shape);
    be.write(poison, std::vector<std::byte>(poison.nbytes(), std::byte{0xFF}).data(),
             poison.nbytes());
    return be.conv2d(x, w, b, c.g);
  }

  std::vector<std::byte> bytes(Backend& be, const Tensor& t) {
    std::vector<std::byte> out(t.nbytes());
    be.read(t, out.data(), out.size());
    return out;
  }

  CpuBackend cpu{4};
  std::unique_ptr<CudaBackend> cudnn, im2col;
};

INSTANTIATE_TEST_SUITE_P(Activations, CudnnConvTest,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST_P(CudnnConvTest, MatchesIm2colAndTheCpu) {
  uint32_t seed = 10;
  for (const ConvCase& c : kCases) {
    const Tensor ref = conv(cpu, c, seed);
    const std::vector<float> expected = cpu.to_floats(ref);
    const std::vector<float> by_cudnn = cudnn->to_floats(conv(*cudnn, c, seed));
    const std::vector<float> by_im2col = im2col->to_floats(conv(*im2col, c, seed));
    EXPECT_LE(relative_error(by_cudnn, expected), tolerance(GetParam())) << c.what << " cuDNN";
    EXPECT_LE(relative_error(by_im2col, expected), tolerance(GetParam())) << c.what << " im2col";
    EXPECT_LE(relative_error(by_cudnn, by_im2col), 2 * tolerance(GetParam())) << c.what;
    seed += 10;
  }
}

TEST_P(CudnnConvTest, SameInputsSameBits) {
  for (const ConvCase& c : {kCases[1], kCases[3], kCases[4]}) {
    const std::vector<std::byte> first = bytes(*cudnn, conv(*cudnn, c, 7));
    EXPECT_EQ(bytes(*cudnn, conv(*cudnn, c, 7)), first) << c.what << ": run to run";
    std::unique_ptr<CudaBackend> fresh = make(true);
    EXPECT_EQ(bytes(*fresh, conv(*fresh, c, 7)), first) << c.what << ": a fresh backend";
  }
}

TEST(CudnnConvPath, ReportsWhichPathConvRuns) {
  EXPECT_THAT(cuda_conv2d_path({}), ::testing::HasSubstr("cuDNN only with --cudnn"));
  BackendOptions on;
  on.use_cudnn = true;
  EXPECT_THAT(cuda_conv2d_path(on),
              ::testing::HasSubstr(cuda::cudnn_loaded() ? "cuDNN 9." : "cuDNN not loaded"));
}

}  // namespace
}  // namespace ebb

#endif
