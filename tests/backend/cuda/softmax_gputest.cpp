// The GPU softmax against the CPU kernel (backend/cpu/kernels/softmax.h) for f32, f16 and
// bf16 storage: rows shorter than a vector, of a warp, of a block and much longer, large
// offsets, masked (-inf) entries, rows of all -inf (NaN, as torch), in place. Outputs are
// NaN-poisoned first, except where NaN is the answer: those run over zeros too. Skips without
// CUDA or without a device.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaSoftmax, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/kernels/softmax.h"
#include "backend/cpu/thread_pool.h"
#include "backend/cuda/kernels/softmax.h"
#include "core/error.h"
#include "support/cuda_kernel_test_support.h"

namespace ebb {
namespace {

using test::DeviceArray;

template <class T>
class CudaSoftmax : public test::CudaStreamTest {
 protected:
  std::vector<float> cpu_softmax(const std::vector<float>& x, int64_t rows, int64_t cols) {
    std::vector<float> y(x.size());
    cpu::softmax_rows(x.data(), cols, y.data(), cols, rows, cols, pool_);
    return y;
  }
  ThreadPool pool_{2};
};
TYPED_TEST_SUITE(CudaSoftmax, test::StorageTypes, test::StorageTypeNames);

TYPED_TEST(CudaSoftmax, MatchesCpu) {
  using T = TypeParam;
  const std::pair<int64_t, int64_t> shapes[] = {{5, 1},     {7, 3},    {1000, 77}, {64, 1024},
                                                {33, 1025}, {9, 4097}, {2, 16385}};
  uint32_t seed = 1;
  for (auto [rows, cols] : shapes) {
    // Scores far from zero, as attention logits can be.
    auto x = test::rounded<T>(test::random_floats(rows * cols, seed++, 30.0f, 70.0f));
    DeviceArray<T> dx(x), dy(x.size());
    dy.poison();
    cuda::softmax(dx.get(), dy.get(), rows, cols, this->stream_);
    this->sync();
    test::expect_close(dy.download(), this->cpu_softmax(x, rows, cols),
                       test::storage_tolerance<T>(1e-3),
                       std::string(test::storage_name<T>()) + " rows=" + std::to_string(rows) +
                           " cols=" + std::to_string(cols));
  }
}

TYPED_TEST(CudaSoftmax, MaskedRowsAndInPlace) {
  using T = TypeParam;
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t cols : {6, 300, 3000}) {
    const int64_t rows = 4;
    auto x = test::rounded<T>(test::random_floats(rows * cols, 7));
    for (int64_t c = 0; c < cols; ++c) {
      x[c] = -inf;                         // row 0: all masked -> NaN
      if (c % 3 != 1) x[cols + c] = -inf;  // row 1: two of three masked
      if (c > 0) x[2 * cols + c] = -inf;   // row 2: only the first survives
    }
    const auto want = this->cpu_softmax(x, rows, cols);
    for (bool poison : {true, false}) {
      DeviceArray<T> dx(x), dy(x.size());
      if (poison)
        dy.poison();
      else
        dy.upload(std::vector<float>(x.size(), 0.0f));
      cuda::softmax(dx.get(), dy.get(), rows, cols, this->stream_);
      this->sync();
      test::expect_close(dy.download(), want, test::storage_tolerance<T>(1e-3),
                         "masked cols=" + std::to_string(cols));
    }
    DeviceArray<T> dx(x);
    cuda::softmax(dx.get(), dx.get(), rows, cols, this->stream_);
    this->sync();
    test::expect_close(dx.download(), want, test::storage_tolerance<T>(1e-3),
                       "in place cols=" + std::to_string(cols));
  }
}

TEST(CudaSoftmaxArguments, RejectsNegativeSizes) {
  float* p = nullptr;
  EXPECT_THROW(cuda::softmax(p, p, -1, 3, nullptr), Error);
  EXPECT_NO_THROW(cuda::softmax(p, p, 3, 0, nullptr));
}

}  // namespace
}  // namespace ebb

#endif  // EBB_HAVE_CUDA
