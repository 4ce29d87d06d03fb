// The GPU activations against the CPU kernels (backend/cpu/kernels/activations.h) for f32,
// f16 and bf16 storage: the f16/bf16 references start from the rounded inputs. Sizes leave
// partial vectors and misaligned rows. Outputs are NaN-poisoned first. Skips without CUDA or
// without a device.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaActivations, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <string>
#include <vector>

#include "backend/cpu/kernels/activations.h"
#include "backend/cpu/thread_pool.h"
#include "backend/cuda/kernels/activations.h"
#include "core/error.h"
#include "support/cuda_kernel_test_support.h"

namespace ebb {
namespace {

using test::DeviceArray;

template <class T>
class CudaActivations : public test::CudaStreamTest {
 protected:
  ThreadPool pool_{2};
};
TYPED_TEST_SUITE(CudaActivations, test::StorageTypes, test::StorageTypeNames);

cpu::GeluApproximation cpu_gelu(cuda::Gelu g) {
  return g == cuda::Gelu::Tanh ? cpu::GeluApproximation::Tanh : cpu::GeluApproximation::None;
}

TYPED_TEST(CudaActivations, MapsMatchCpu) {
  using T = TypeParam;
  for (int64_t n : {1, 7, 1000, 65539}) {
    // Wide inputs reach both tails of every function.
    const auto x =
        test::rounded<T>(test::random_floats(n, static_cast<uint32_t>(n), -10.0f, 10.0f));
    DeviceArray<T> dx(x), dy(n);
    for (int f = 0; f < 3; ++f) {
      std::vector<float> want(n);
      dy.poison();
      const char* name = f == 0 ? "silu" : f == 1 ? "gelu" : "gelu tanh";
      if (f == 0) {
        cpu::silu(x.data(), want.data(), n, this->pool_);
        cuda::silu(dx.get(), dy.get(), n, this->stream_);
      } else {
        const cuda::Gelu g = f == 1 ? cuda::Gelu::Erf : cuda::Gelu::Tanh;
        cpu::gelu(x.data(), want.data(), n, cpu_gelu(g), this->pool_);
        cuda::gelu(dx.get(), dy.get(), n, g, this->stream_);
      }
      this->sync();
      test::expect_close(
          dy.download(), want, test::storage_tolerance<T>(),
          std::string(test::storage_name<T>()) + " " + name + " n=" + std::to_string(n));
    }
  }
}

TYPED_TEST(CudaActivations, InPlace) {
  using T = TypeParam;
  const int64_t n = 4099;
  const auto x = test::rounded<T>(test::random_floats(n, 5, -8.0f, 8.0f));
  std::vector<float> want(n);
  cpu::silu(x.data(), want.data(), n, this->pool_);
  DeviceArray<T> dx(x);
  cuda::silu(dx.get(), dx.get(), n, this->stream_);
  this->sync();
  test::expect_close(dx.download(), want, test::storage_tolerance<T>(), "silu in place");
}

TYPED_TEST(CudaActivations, GegluMatchesCpu) {
  using T = TypeParam;
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 13}, {77, 640}, {300, 1283}};
  for (auto [rows, cols] : shapes) {
    const auto x = test::rounded<T>(test::random_floats(rows * 2 * cols, 11, -8.0f, 8.0f));
    DeviceArray<T> dx(x), dy(rows * cols);
    for (cuda::Gelu g : {cuda::Gelu::Erf, cuda::Gelu::Tanh}) {
      std::vector<float> want(rows * cols);
      cpu::geglu(x.data(), 2 * cols, want.data(), cols, rows, cols, cpu_gelu(g), this->pool_);
      dy.poison();
      cuda::geglu(dx.get(), dy.get(), rows, cols, g, this->stream_);
      this->sync();
      test::expect_close(
          dy.download(), want, test::storage_tolerance<T>(),
          std::string(test::storage_name<T>()) + " geglu rows=" + std::to_string(rows) +
              " cols=" + std::to_string(cols) + (g == cuda::Gelu::Tanh ? " tanh" : " erf"));
    }
  }
}

TEST(CudaActivationArguments, RejectsNegativeSizes) {
  float* p = nullptr;
  EXPECT_THROW(cuda::silu(p, p, -1, nullptr), Error);
  EXPECT_THROW(cuda::geglu(p, p, 2, -3, cuda::Gelu::Erf, nullptr), Error);
  EXPECT_NO_THROW(cuda::gelu(p, p, 0, cuda::Gelu::Tanh, nullptr));
}

}  // namespace
}  // namespace ebb

#endif  // EBB_HAVE_CUDA
