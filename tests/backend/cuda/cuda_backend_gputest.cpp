// Every op of the CUDA backend against the CPU backend on the same random inputs, with
// activations in F32 (within 1e-5 relative), F16 and BF16 (inputs rounded to the dtype first,
// so only the GPU's own rounding and summation order differ; bounds below). Outputs are
// poisoned with NaN first: an element an op fails to write fails the comparison. Parameters
// reach the GPU as the weight store's device plans upload them (CudaTransfer, file dtype). Also
// the budget error, host parameters refused, and pinned uploads on the copy stream. Skips
// without a GPU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaBackend, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_transfer.h"
#include "backend/op_test_util.h"
#include "core/error.h"
#include "support/cuda_test_support.h"
#include "tensor/float_convert.h"
#include "tensor/random_blocks.h"

namespace ebb {
namespace {

using test::relative_error;

using ::testing::AllOf;
using ::testing::HasSubstr;

// ‖gpu − cpu‖ / ‖cpu‖ bounds: f32 differs by summation order only; f16 and bf16 round every
// output (2^-11 and 2^-8 relative) and products of long sums somewhat more.
double tolerance(DType t) {
  return t == DType::F32 ? 1e-5 : t == DType::F16 ? 2e-3 : 1.6e-2;
}

float round_to(DType t, float x) {
  if (t == DType::F16) return f16_to_f32(f32_to_f16(x));
  if (t == DType::BF16) return bf16_to_f32(f32_to_bf16(x));
  return x;
}

class CudaOps : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    std::string why;
    if (!test::device_present(why)) GTEST_SKIP() << why;
    CudaBackendOptions options;
    options.activation_dtype = GetParam();
    options.max_im2col_bytes = 1 << 20;  // several column chunks at the larger test images
    gpu = std::make_unique<CudaBackend>(options);
    transfer = std::make_unique<CudaTransfer>(*gpu);
  }

  DType dtype() const { return GetParam(); }

  // Random values the activation dtype holds exactly.
  std::vector<float> values(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) const {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = round_to(dtype(), dist(rng));
    return v;
  }

  // The same values as an activation of each backend.
  std::pair<Tensor, Tensor> both(const Shape& shape, uint32_t seed) {
    const std::vector<float> v = values(static_cast<size_t>(shape_numel(shape)), seed);
    return {cpu.from_floats(shape, v), gpu->from_floats(shape, v)};
  }

  // A parameter in host memory, as the weight store serves them; both backends read it.
  Tensor host(const Shape& shape, uint32_t seed) {
    std::vector<float>& v = host_values.emplace_back(values(shape_numel(shape), seed));
    return Tensor::wrap(v.data(), v.size() * sizeof(float), DType::F32, shape, Device::cpu(),
                        nullptr);
  }

  // A host parameter on the GPU as the weight store's device plans place it: its bytes, in
  // their own dtype, uploaded through CudaTransfer. Undefined stays undefined.
  Tensor on_device(const Tensor& p) {
    if (!p.defined()) return p;
    std::shared_ptr<Storage> storage = transfer->allocate(p.nbytes(), "test parameter");
    transfer->upload({{{p.bytes(), p.nbytes()}, storage->data()}}, nullptr)->wait();
    return Tensor(storage, 0, p.dtype(), p.shape());
  }

  // Fills the next GPU block of `shape`'s size class with NaN, so an op's output starts poisoned.
  void poison(const Shape& shape) {
    const Tensor t = gpu->empty(shape);
    std::vector<std::byte> nan(t.nbytes(), std::byte{0xFF});
    gpu->write(t, nan.data(), nan.size());
  }

  void expect_close(const Tensor& cpu_out, const Tensor& gpu_out, const std::string& what) {
    ASSERT_EQ(cpu_out.shape(), gpu_out.shape()) << what;
    EXPECT_EQ(gpu_out.dtype(), dtype()) << what;
    EXPECT_LE(relative_error(gpu->to_floats(gpu_out), cpu.to_floats(cpu_out)), tolerance(dtype()))
        << what << " " << gpu_out.describe();
  }

  CpuBackend cpu{2};
  std::unique_ptr<CudaBackend> gpu;
  std::unique_ptr<CudaTransfer> transfer;
  std::deque<std::vector<float> > host_values;
};

INSTANTIATE_TEST_SUITE_P(Activations, CudaOps,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST_P(CudaOps, Linear) {
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
    const auto [xc, xg] = both(c.x, seed++);
    const Tensor w = host({c.n, c.x.back()}, seed++);
    const Tensor b = c.bias ? host({c.n}, seed++) : Tensor{};
    Shape out = c.x;
    out.back() = c.n;
    const Tensor wd = on_device(w), bd = on_device(b);
    poison(out);
    expect_close(cpu.linear(xc, w, b), gpu->linear(xg, wd, bd), shape_str(c.x));
  }
}

TEST_P(CudaOps, DeviceParametersOfAnotherFloatType) {
  // As a weight store's device plan uploads them: in the file's dtype, not the activations'.
  const DType stored = dtype() == DType::F32 ? DType::F16 : DType::F32;
  const int64_t m = 7, k = 96, n = 40;
  const auto [xc, xg] = both({m, k}, 1300);
  const auto device_copy = [&](const Tensor& host_tensor) {
    std::vector<float> v(host_tensor.data<float>(),
                         host_tensor.data<float>() + host_tensor.numel());
    for (float& x : v) x = round_to(stored, x);
    std::memcpy(const_cast<float*>(host_tensor.data<float>()), v.data(), v.size() * sizeof(float));
    const Tensor t = gpu->empty(host_tensor.shape(), stored, MemoryTag::Weights, "test");
    gpu->write_floats(t, v);
    return t;
  };
  const Tensor w = host({n, k}, 1301), b = host({n}, 1302);
  const Tensor wd = device_copy(w), bd = device_copy(b);
  poison({m, n});
  expect_close(cpu.linear(xc, w, b), gpu->linear(xg, wd, bd), "linear");
  const Tensor gamma = host({k}, 1303);
  const Tensor gd = device_copy(gamma);
  poison({m, k});
  expect_close(cpu.layer_norm(xc, gamma, {}, 1e-5f), gpu->layer_norm(xg, gd, {}, 1e-5f),
               "layer_norm");
}

TEST_P(CudaOps, LinearDecodesQuantizedWeights) {
  for (DType t : {DType::Q8_0, DType::Q4_K}) {
    const int64_t m = 5, k = 512, n = 48;
    std::vector<float>& raw = host_values.emplace_back(n * k);  // room for the blocks
    auto* bytes = reinterpret_cast<std::byte*>(raw.data());
    const uint64_t size = dense_bytes(t, {n, k}, "test");
    fill_random(t, {bytes, size}, 3, 0.5f);
    const Tensor w = Tensor::wrap(bytes, size, t, {n, k}, Device::cpu(), nullptr);
    const auto [xc, xg] = both({m, k}, 4);
    const Tensor wd = on_device(w);
    poison({m, n});
    expect_close(cpu.linear(xc, w, {}), gpu->linear(xg, wd, {}), std::string(dtype_name(t)));
  }
}

TEST_P(CudaOps, Conv2d) {
  struct Case {
    Shape x;
    int64_t o, kernel;
    Conv2dGeometry g;
    bool bias;
  };
  const Case cases[] = {
      {{2, 4, 9, 7}, 5, 3, Conv2dGeometry::uniform(1, 1), true},
      {{1, 8, 16, 16}, 16, 3, {2, 0, 0, 1, 1}, true},  // the VAE's asymmetric downsampling
      {{2, 16, 5, 6}, 8, 1, Conv2dGeometry::uniform(1, 0), true},
      {{1, 3, 8, 8}, 4, 1, Conv2dGeometry::uniform(2, 0), false},
      {{1, 32, 64, 48}, 24, 3, Conv2dGeometry::uniform(1, 1), true},  // im2col in chunks
  };
  uint32_t seed = 100;
  for (const Case& c : cases) {
    const auto [xc, xg] = both(c.x, seed++);
    const Tensor w = host({c.o, c.x[1], c.kernel, c.kernel}, seed++);
    const Tensor b = c.bias ? host({c.o}, seed++) : Tensor{};
    const Tensor ref = cpu.conv2d(xc, w, b, c.g);
    const Tensor wd = on_device(w), bd = on_device(b);
    poison(ref.shape());
    expect_close(ref, gpu->conv2d(xg, wd, bd, c.g), shape_str(c.x));
  }
}

TEST_P(CudaOps, Attention) {
  struct Case {
    int64_t batch, q_len, kv_len, heads, head_dim;
  };
  // SD1 cross-attention (40), SDXL (64), Flux (128), the VAE (512), and an odd head size that
  // only the score path takes.
  const Case cases[] = {{2, 64, 77, 8, 40},
                        {1, 100, 100, 10, 64},
                        {1, 33, 20, 2, 128},
                        {1, 64, 64, 1, 512},
                        {2, 9, 11, 3, 24}};
  uint32_t seed = 200;
  for (const Case& c : cases) {
    const int64_t width = c.heads * c.head_dim;
    const auto [qc, qg] = both({c.batch, c.q_len, width}, seed++);
    const auto [kc, kg] = both({c.batch, c.kv_len, width}, seed++);
    const auto [vc, vg] = both({c.batch, c.kv_len, width}, seed++);
    poison({c.batch, c.q_len, width});
    expect_close(cpu.attention(qc, kc, vc, c.heads), gpu->attention(qg, kg, vg, c.heads),
                 fmt::format("heads {} x {}", c.heads, c.head_dim));
  }
}

TEST_P(CudaOps, AttentionOnFusedProjectionViews) {
  const int64_t heads = 8, width = 320, len = 77;
  const auto [qkv_c, qkv_g] = both({2, len, 3 * width}, 300);
  const auto parts = [&](const Tensor& qkv, int i) { return qkv.narrow(-1, i * width, width); };
  poison({2, len, width});
  expect_close(cpu.attention(parts(qkv_c, 0), parts(qkv_c, 1), parts(qkv_c, 2), heads),
               gpu->attention(parts(qkv_g, 0), parts(qkv_g, 1), parts(qkv_g, 2), heads), "qkv");
}

TEST_P(CudaOps, CopiesOfViews) {
  const auto [xc, xg] = both({2, 6, 5, 4}, 400);
  poison({2, 3, 5, 4});
  expect_close(cpu.contiguous(xc.narrow(1, 2, 3)), gpu->contiguous(xg.narrow(1, 2, 3)), "narrow");
  poison({2, 12, 5, 4});
  expect_close(cpu.concat({xc, xc.narrow(1, 0, 6)}, 1), gpu->concat({xg, xg.narrow(1, 0, 6)}, 1),
               "concat");
  const auto cs = cpu.split(xc, {1, 3}, 3), gs = gpu->split(xg, {1, 3}, 3);
  expect_close(cs[0], gs[0], "split 0");
  expect_close(cs[1], gs[1], "split 1");
}

TEST_P(CudaOps, Norms) {
  const auto [xc, xg] = both({2, 64, 9, 7}, 700);
  const Tensor gamma = host({64}, 701), beta = host({64}, 702);
  const Tensor gamma_d = on_device(gamma), beta_d = on_device(beta);
  poison({2, 64, 9, 7});
  expect_close(cpu.group_norm(xc, 32, gamma, beta, 1e-5f),
               gpu->group_norm(xg, 32, gamma_d, beta_d, 1e-5f), "group_norm");
  poison({2, 64, 9, 7});
  expect_close(cpu.group_norm(xc, 8, {}, {}, 1e-6f), gpu->group_norm(xg, 8, {}, {}, 1e-6f),
               "group_norm without affine");
  const auto [rc, rg] = both({3, 77, 96}, 703);
  const Tensor g96 = host({96}, 704), b96 = host({96}, 705);
  const Tensor g96_d = on_device(g96), b96_d = on_device(b96);
  poison({3, 77, 96});
  expect_close(cpu.layer_norm(rc, g96, b96, 1e-5f), gpu->layer_norm(rg, g96_d, b96_d, 1e-5f),
               "layer_norm");
  poison({3, 77, 96});
  expect_close(cpu.rms_norm(rc, g96, 1e-6f), gpu->rms_norm(rg, g96_d, 1e-6f), "rms_norm");
}

TEST_P(CudaOps, BroadcastingArithmetic) {
  const auto [ac, ag] = both({2, 8, 5, 6}, 800);
  const auto [bc, bg] = both({8, 1, 1}, 801);
  const auto [sc, sg] = both({1}, 802);
  poison({2, 8, 5, 6});
  expect_close(cpu.add(ac, bc), gpu->add(ag, bg), "add per channel");
  poison({2, 8, 5, 6});
  expect_close(cpu.mul(ac, sc), gpu->mul(ag, sg), "mul by a scalar");
  poison({2, 8, 6, 5});
  const std::vector<int> swap{0, 1, 3, 2};
  expect_close(cpu.add(ac.permuted(swap), ac.permuted(swap)),
               gpu->add(ag.permuted(swap), ag.permuted(swap)), "add of strided views");
}

TEST_P(CudaOps, Activations) {
  const auto [xc, xg] = both({4, 1000}, 900);
  poison({4, 1000});
  expect_close(cpu.silu(xc), gpu->silu(xg), "silu");
  poison({4, 1000});
  expect_close(cpu.gelu(xc), gpu->gelu(xg), "gelu");
  poison({4, 1000});
  expect_close(cpu.gelu(xc, GeluApproximation::Tanh), gpu->gelu(xg, GeluApproximation::Tanh),
               "gelu tanh");
  poison({4, 500});
  expect_close(cpu.geglu(xc), gpu->geglu(xg), "geglu");
}

TEST_P(CudaOps, SoftmaxUpsampleAndPermute) {
  for (const Shape& shape : {Shape{4, 77}, Shape{3, 3000}}) {
    const auto [xc, xg] = both(shape, 1000);
    poison(shape);
    expect_close(cpu.softmax(xc), gpu->softmax(xg), "softmax " + shape_str(shape));
  }
  const auto [xc, xg] = both({2, 3, 5, 6}, 1001);
  poison({2, 3, 10, 12});
  expect_close(cpu.upsample_nearest2x(xc), gpu->upsample_nearest2x(xg), "upsample");
  poison({2, 5, 6, 3});
  expect_close(cpu.permute(xc, {0, 2, 3, 1}), gpu->permute(xg, {0, 2, 3, 1}), "permute");
}

TEST_P(CudaOps, RopeAndTimestepEmbedding) {
  const int64_t len = 10, heads = 4, head_dim = 16;
  const auto [xc, xg] = both({2, len, heads * head_dim}, 1100);
  const std::vector<float> cos = values(len * head_dim / 2, 1101),
                           sin = values(len * head_dim / 2, 1102);
  const auto f32_tensor = [](Backend& be, const Shape& shape, const std::vector<float>& v) {
    const Tensor t = be.empty(shape, DType::F32, MemoryTag::Activations, "test");
    be.write_floats(t, v);
    return t;
  };
  for (RopeLayout layout : {RopeLayout::InterleavedPairs, RopeLayout::SplitHalves}) {
    poison({2, len, heads * head_dim});
    expect_close(cpu.rope(xc, heads, f32_tensor(cpu, {len, head_dim / 2}, cos),
                          f32_tensor(cpu, {len, head_dim / 2}, sin), layout),
                 gpu->rope(xg, heads, f32_tensor(*gpu, {len, head_dim / 2}, cos),
                           f32_tensor(*gpu, {len, head_dim / 2}, sin), layout),
                 "rope");
  }
  std::vector<float> ids;
  for (int64_t i = 0; i < len; ++i) ids.insert(ids.end(), {0.0f, float(i / 4), float(i % 4)});
  const std::vector<int64_t> axes{4, 6, 6};
  const auto [cc, sc] = cpu.rope_tables(f32_tensor(cpu, {len, 3}, ids), axes, 10000.0);
  const auto [cg, sg] = gpu->rope_tables(f32_tensor(*gpu, {len, 3}, ids), axes, 10000.0);
  EXPECT_EQ(cg.dtype(), DType::F32);
  EXPECT_LE(relative_error(gpu->to_floats(cg), cpu.to_floats(cc)), 1e-6);
  EXPECT_LE(relative_error(gpu->to_floats(sg), cpu.to_floats(sc)), 1e-6);

  const std::vector<float> steps{999.0f, 500.5f, 1.0f};
  poison({3, 320});
  expect_close(
      cpu.timestep_embedding(f32_tensor(cpu, {3}, steps), 320, cpu::sd_timestep_params()),
      gpu->timestep_embedding(f32_tensor(*gpu, {3}, steps), 320, cpu::sd_timestep_params()),
      "timestep embedding");
}

TEST_P(CudaOps, MaskedAttention) {
  const int64_t len = 77, heads = 4, width = 256;
  const auto [qc, qg] = both({2, len, width}, 1200);
  const auto [kc, kg] = both({2, len, width}, 1201);
  const auto [vc, vg] = both({2, len, width}, 1202);
  std::vector<float> causal(len * len, 0.0f);
  for (int64_t i = 0; i < len; ++i)
    for (int64_t j = i + 1; j < len; ++j)
      causal[i * len + j] = -std::numeric_limits<float>::infinity();
  poison({2, len, width});
  expect_close(cpu.attention(qc, kc, vc, heads, cpu.from_floats({len, len}, causal)),
               gpu->attention(qg, kg, vg, heads, gpu->from_floats({len, len}, causal)), "causal");
}

TEST_P(CudaOps, HostFloatsRoundTrip) {
  const std::vector<float> v = values(1000, 500);
  EXPECT_EQ(gpu->to_floats(gpu->from_floats({10, 100}, v)), v);
}

TEST_P(CudaOps, HostParametersAreANamedError) {
  // The weight store uploads parameters (CudaTransfer); the backend never copies host ones.
  const auto [xc, xg] = both({4, 32}, 601);
  EXPECT_THAT(
      [&] {
        gpu->linear(xg, host({64, 32}, 600), {});
      },
      ::testing::ThrowsMessage<Error>(
          AllOf(HasSubstr("linear: w"), HasSubstr("is on cpu"), HasSubstr("cuda0"))));
  EXPECT_EQ(gpu->arena().stats().in_use[int(MemoryTag::Weights)], 0u);
}

class CudaDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!test::device_present(why)) GTEST_SKIP() << why;
  }
};

TEST_F(CudaDevice, BudgetErrorNamesTagSizeAndBudget) {
  CudaBackendOptions options;
  options.budget = uint64_t(64) << 20;
  CudaBackend gpu(options);
  EXPECT_THAT([&] { gpu.empty({int64_t(50) << 20}, DType::F32, MemoryTag::Activations, "big op"); },
              ::testing::ThrowsMessage<Error>(
                  AllOf(HasSubstr("cuda0"), HasSubstr("big op"), HasSubstr("activations"),
                        HasSubstr("200.0 MiB"), HasSubstr("64.0 MiB"))));
}

TEST_F(CudaDevice, PinnedUploadOnTheCopyStream) {
  CudaBackend gpu;
  const int64_t n = int64_t(3) << 20;
  std::shared_ptr<Storage> staging = gpu.pinned_pool().acquire(n * sizeof(float));
  auto* src = reinterpret_cast<float*>(staging->data());
  std::vector<float> expected(n);
  for (int64_t i = 0; i < n; ++i) expected[i] = src[i] = static_cast<float>(i % 1000) - 500.0f;
  const Tensor dst = gpu.empty({n}, DType::F32, MemoryTag::Weights, "upload");
  CopyEvent done = gpu.copy_stream().upload(dst.mutable_bytes(), src, n * sizeof(float), staging);
  staging.reset();  // the event keeps the staging block until the copy completes
  gpu.wait(done);
  EXPECT_EQ(gpu.to_floats(dst), expected);
  EXPECT_TRUE(done.done());
  EXPECT_GT(gpu.pinned_pool().arena().stats().peak[int(MemoryTag::Staging)], 0u);
}

TEST_F(CudaDevice, TransferUploadsPiecesThroughBoundedStaging) {
  CudaBackend gpu;
  const uint64_t block = uint64_t(1) << 20;
  CudaTransfer transfer(gpu, block, 2);
  EXPECT_EQ(transfer.name(), "cuda0");
  std::vector<std::byte> big(5 * block + 12345), small(100);
  for (size_t i = 0; i < big.size(); ++i) big[i] = std::byte(i * 7 % 251);
  for (size_t i = 0; i < small.size(); ++i) small[i] = std::byte(200 - i);
  const auto device_bytes = [&](const std::shared_ptr<Storage>& storage, size_t n) {
    std::vector<std::byte> out(n);
    gpu.read(Tensor(storage, 0, DType::U8, {static_cast<int64_t>(n)}), out.data(), n);
    return out;
  };
  const std::shared_ptr<Storage> a = transfer.allocate(big.size(), "block a");
  const std::shared_ptr<Storage> b = transfer.allocate(small.size(), "block b");
  EXPECT_EQ(a->device(), Device::cuda(0));
  const std::shared_ptr<TransferEvent> done =
      transfer.upload({{big, a->data()}, {small, b->data()}}, nullptr);
  done->wait();
  EXPECT_TRUE(done->done());
  EXPECT_EQ(device_bytes(a, big.size()), big);
  EXPECT_EQ(device_bytes(b, small.size()), small);
  EXPECT_LE(gpu.pinned_pool().arena().stats().peak[int(MemoryTag::Staging)], 2 * block);
  EXPECT_GE(gpu.arena().stats().in_use[int(MemoryTag::Weights)], big.size() + small.size());
}

TEST(CudaDeviceSelection, MissingDeviceIsAClearError) {
  std::string why;
  if (!test::device_present(why)) {
    EXPECT_THROW(require_cuda_device(0), Error);
    return;
  }
  EXPECT_THAT([] { require_cuda_device(99); },
              ::testing::ThrowsMessage<Error>(HasSubstr("no device cuda99")));
}

}  // namespace
}  // namespace ebb

#endif
