// The f16 overflow guard on the GPU: a VAE whose weights push f16 activations past 65504
// (sd1-tiny's with the decoder's first convolution scaled by 10⁶) decodes to NaN in F16; through
// decode_latent it comes out finite and equal to the decode of a backend computing in F32.
// Also the device-side finiteness check itself. Skips without a GPU.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(OverflowGuardCuda, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_transfer.h"
#include "backend/op_test_util.h"
#include "pipeline/torch_rng.h"
#include "pipeline/txt2img.h"
#include "support/cuda_test_support.h"
#include "support/temp_dir.h"
#include "support/vae_copy.h"
#include "tensor/float_convert.h"
#include "weights/weight_store.h"

namespace ebb {
namespace {

const std::string kCheckpoint = std::string(EBB_TEST_DATA_DIR) + "/sd/sd1-tiny.safetensors";

CudaBackendOptions with_activations(DType t) {
  CudaBackendOptions options;
  options.activation_dtype = t;
  return options;
}

class OverflowGuardCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!test::device_present(why)) GTEST_SKIP() << why;
  }
};

TEST_F(OverflowGuardCuda, AllFiniteFindsNanAndInfinityInEveryDtype) {
  CudaBackend gpu;
  // Not a whole number of 16-byte vectors, so the tail is read element by element.
  const size_t n = 4099;
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    gpu.set_activation_dtype(t);
    std::vector<float> v = test::random_floats(n, 3);
    EXPECT_TRUE(gpu.all_finite(gpu.from_floats({int64_t(n)}, v))) << dtype_name(t);
    for (size_t at : {size_t{0}, n / 2, n - 1}) {
      for (float bad :
           {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
        std::vector<float> w = v;
        w[at] = bad;
        EXPECT_FALSE(gpu.all_finite(gpu.from_floats({int64_t(n)}, w)))
            << dtype_name(t) << " at " << at;
      }
    }
  }
  // Finite in f32, infinite once stored as f16.
  gpu.set_activation_dtype(DType::F16);
  EXPECT_FALSE(gpu.all_finite(gpu.from_floats({2}, std::vector<float>{1.0f, 1e5f})));
}

TEST_F(OverflowGuardCuda, OverflowingDecodeIsRedoneInF32) {
  const test::TempDir dir;
  const std::string path = dir / "vae.safetensors";
  // The first convolution's output lands far above f16's range; the group norms after it
  // bring f32 back to ordinary values.
  test::write_vae_copy(kCheckpoint, path, [](TensorToWrite& t) {
    if (t.name != "first_stage_model.decoder.conv_in.weight") return;
    // Stored as F32: the scaled values do not fit in the file's f16.
    ASSERT_EQ(t.dtype, DType::F16);
    t.dtype = DType::F32;
    t.fill = [inner = t.fill](std::span<std::byte> dst, uint64_t offset) {
      std::vector<uint16_t> half(dst.size() / sizeof(float));
      inner(std::as_writable_bytes(std::span(half)), offset / 2);
      auto* values = reinterpret_cast<float*>(dst.data());
      for (size_t i = 0; i < half.size(); ++i) values[i] = f16_to_f32(half[i]) * 1e6f;
    };
  });
  const ModelSource source = ModelSource::open({.model = path});
  DiffusionModelSpec spec;
  spec.arch = Architecture::SD1;
  spec.vae = vae_config(source, Architecture::SD1);
  spec.vae_scaling_factor = 0.18215f;
  const Shape shape{1, spec.vae.latent_channels, 8, 8};
  std::vector<float> z(static_cast<size_t>(shape_numel(shape)));
  TorchCpuGenerator(7).randn(z);

  CudaBackend f16(with_activations(DType::F16));
  CudaBackend f32(with_activations(DType::F32));
  // Weights reach each GPU backend as in `ebb generate`: uploaded by a store through CudaTransfer.
  MemoryPlan plan;
  for (const Component& component : source.components())
    plan.placement[component.name] = WeightPlacement::Device;
  Ledger ledger;
  CudaTransfer f16_transfer(f16);
  CudaTransfer f32_transfer(f32);
  WeightStore store(source, ledger, plan, &f16_transfer);
  WeightStore f32_store(source, ledger, plan, &f32_transfer);
  // The overflow is real: decoded straight in f16, the image is not finite.
  std::vector<float> scaled = z;
  for (float& v : scaled) v /= spec.vae_scaling_factor;
  ASSERT_FALSE(f16.all_finite(vae_decode(f16, store, spec.vae, f16.from_floats(shape, scaled))));

  // The same f32 latent for both backends (the F16 one reads it as floats).
  const Tensor latent = f16.empty(shape, DType::F32);
  f16.write_floats(latent, z);
  const Tensor guarded = decode_latent(f16, store, spec, latent, std::nullopt);
  EXPECT_EQ(f16.activation_dtype(), DType::F16);  // restored after the F32 decode
  EXPECT_EQ(guarded.dtype(), DType::F32);
  const std::vector<float> got = f16.to_floats(guarded);
  const std::vector<float> want =
      f32.to_floats(decode_latent(f32, f32_store, spec, f32.from_floats(shape, z), std::nullopt));
  ASSERT_EQ(got.size(), want.size());
  for (float v : got) ASSERT_TRUE(std::isfinite(v));
  const double gap = test::relative_error(got, want);
  RecordProperty("relative_gap", std::to_string(gap));
  EXPECT_LE(gap, 1e-6);
}

}  // namespace
}  // namespace ebb

#endif
