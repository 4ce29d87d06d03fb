// The GPU data movement against naive references, bit for bit: strided copies of every
// element size (permutes, a concat slice, broadcast reads, six dimensions, rank 0), dtype
// conversions against tensor/float_convert.h over normal, subnormal and overflowing values,
// and 2x nearest upsampling. Destinations are poisoned first. Skips without CUDA or without a
// device.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaLayout, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels/layout.h"
#include "core/error.h"
#include "support/cuda_kernel_test_support.h"

namespace ebb {
namespace {

using test::cuda_check;
using test::DeviceBuffer;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

void upload(const DeviceBuffer& d, const std::vector<uint8_t>& h) {
  cuda_check(cudaMemcpy(d.get(), h.data(), h.size(), cudaMemcpyHostToDevice), "H2D");
}

std::vector<uint8_t> download(const DeviceBuffer& d, size_t n) {
  std::vector<uint8_t> h(n);
  cuda_check(cudaMemcpy(h.data(), d.get(), n, cudaMemcpyDeviceToHost), "D2H");
  return h;
}

struct CopyCase {
  std::string name;
  std::vector<int64_t> sizes, src_strides, dst_strides;
  int64_t src_len, dst_len;  // elements in each buffer
  int64_t dst_offset = 0;    // of the view's first element in dst
};

std::vector<CopyCase> copy_cases() {
  return {
      {"dense", {3, 5, 7}, {35, 7, 1}, {35, 7, 1}, 105, 105},
      // [2, 3, 4, 5] permuted (0, 2, 3, 1) into a dense [2, 4, 5, 3].
      {"permute", {2, 4, 5, 3}, {60, 5, 1, 20}, {60, 15, 3, 1}, 120, 120},
      // The second of two [2, 3, 9] parts concatenated along the last dimension into [2, 3, 20].
      {"concat slice", {2, 3, 11}, {33, 11, 1}, {60, 20, 1}, 66, 120, 9},
      {"broadcast read", {4, 33}, {0, 1}, {33, 1}, 33, 132},
      {"six dims", {2, 3, 2, 3, 2, 3}, {1, 2, 6, 12, 36, 72}, {108, 36, 18, 6, 3, 1}, 216, 216},
      {"transpose", {67, 131}, {1, 67}, {131, 1}, 67 * 131, 67 * 131},
      {"rank 0", {}, {}, {}, 1, 1},
  };
}

class CudaLayout : public test::CudaStreamTest {};

TEST_F(CudaLayout, StridedCopyMovesEveryElementSize) {
  uint32_t seed = 1;
  for (const CopyCase& c : copy_cases()) {
    for (size_t bytes : {1, 2, 4, 8}) {
      const auto src = random_bytes(c.src_len * bytes, seed++);
      std::vector<uint8_t> want(c.dst_len * bytes, 0xFF);
      int64_t count = 1;
      for (int64_t s : c.sizes) count *= s;
      for (int64_t i = 0; i < count; ++i) {
        int64_t rest = i, so = 0, dof = 0;
        for (size_t d = c.sizes.size(); d-- > 0;) {
          const int64_t k = rest % c.sizes[d];
          rest /= c.sizes[d];
          so += k * c.src_strides[d];
          dof += k * c.dst_strides[d];
        }
        std::memcpy(&want[(c.dst_offset + dof) * bytes], &src[so * bytes], bytes);
      }
      DeviceBuffer dsrc(src.size()), ddst(want.size());
      upload(dsrc, src);
      upload(ddst, std::vector<uint8_t>(want.size(), 0xFF));
      cuda::strided_copy(dsrc.get(), c.src_strides.data(), ddst.get() + c.dst_offset * bytes,
                         c.dst_strides.data(), c.sizes.data(), int(c.sizes.size()), bytes, stream_);
      sync();
      EXPECT_EQ(download(ddst, want.size()), want) << c.name << ", " << bytes << "-byte elements";
    }
  }
}

// Values that hit f16 subnormals, ordinary values, and overflow to infinity.
std::vector<float> conversion_inputs() {
  std::vector<float> v;
  for (float scale : {1e-6f, 1.0f, 3e4f, 1e5f, 1e38f}) {
    const auto r = test::random_floats(1001, static_cast<uint32_t>(scale), -scale, scale);
    v.insert(v.end(), r.begin(), r.end());
  }
  v.insert(v.end(), {0.0f, -0.0f, 65504.0f, 65520.0f, 1.0f / 0.0f, -1.0f / 0.0f});
  return v;
}

template <class From, class To>
void expect_conversion(cudaStream_t stream, const std::vector<float>& values) {
  const int64_t n = int64_t(values.size());
  test::DeviceArray<From> src(values);
  test::DeviceArray<To> dst(values.size());
  dst.poison();
  cuda::convert(src.get(), dst.get(), n, stream);
  cuda_check(cudaStreamSynchronize(stream), "sync");
  // The host's conversions of the same values, through f32 (exact for every source type).
  const std::vector<float> want = test::rounded<To>(test::rounded<From>(values));
  const std::vector<float> got = dst.download();
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t g, w;
    std::memcpy(&g, &got[i], 4);
    std::memcpy(&w, &want[i], 4);
    if (g != w && bad++ < 3)
      ADD_FAILURE() << test::storage_name<From>() << " -> " << test::storage_name<To>()
                    << " element " << i << ": got " << got[i] << ", want " << want[i];
  }
  EXPECT_EQ(bad, 0);
}

TEST_F(CudaLayout, ConvertsBitForBit) {
  const auto values = conversion_inputs();
  for (int64_t n : std::vector<int64_t>{1, 7, 9, int64_t(values.size())}) {
    const std::vector<float> v(values.end() - n, values.end());
    expect_conversion<float, __half>(stream_, v);
    expect_conversion<float, __nv_bfloat16>(stream_, v);
    expect_conversion<__half, float>(stream_, v);
    expect_conversion<__nv_bfloat16, float>(stream_, v);
    expect_conversion<__half, __nv_bfloat16>(stream_, v);
    expect_conversion<__nv_bfloat16, __half>(stream_, v);
  }
}

TEST_F(CudaLayout, UpsampleNearest2xRepeatsPixels) {
  const int64_t n = 2, c = 3, h = 5, w = 7;
  for (size_t bytes : {1, 2, 4, 8}) {
    const auto x = random_bytes(n * c * h * w * bytes, static_cast<uint32_t>(bytes));
    std::vector<uint8_t> want(4 * x.size());
    for (int64_t p = 0; p < n * c; ++p)
      for (int64_t i = 0; i < 2 * h; ++i)
        for (int64_t j = 0; j < 2 * w; ++j)
          std::memcpy(&want[((p * 2 * h + i) * 2 * w + j) * bytes],
                      &x[((p * h + i / 2) * w + j / 2) * bytes], bytes);
    DeviceBuffer dx(x.size()), dout(want.size());
    upload(dx, x);
    upload(dout, std::vector<uint8_t>(want.size(), 0xFF));
    cuda::upsample_nearest2x(dx.get(), dout.get(), n, c, h, w, bytes, stream_);
    sync();
    EXPECT_EQ(download(dout, want.size()), want) << bytes << "-byte elements";
  }
}

TEST(CudaLayoutArguments, RejectsBadRequests) {
  const int64_t sizes[] = {2, 2}, strides[] = {2, 1};
  EXPECT_THROW(cuda::strided_copy(nullptr, strides, nullptr, strides, sizes, 2, 3, nullptr), Error);
  EXPECT_THROW(cuda::upsample_nearest2x(nullptr, nullptr, 1, 1, 1, 1, 16, nullptr), Error);
  void* odd = reinterpret_cast<void*>(uintptr_t{1} << 20 | 2);
  EXPECT_THROW(cuda::upsample_nearest2x(nullptr, odd, 1, 1, 1, 1, 4, nullptr), Error);
  EXPECT_THROW(
      cuda::convert(static_cast<const float*>(nullptr), static_cast<__half*>(nullptr), -1, nullptr),
      Error);
}

}  // namespace
}  // namespace ebb

#endif  // EBB_HAVE_CUDA
