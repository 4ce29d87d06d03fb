// The GPU dequantizers against the CPU path (itself checked against gguf-py): every block type
// into every output type, bit for bit, on the gguf-py fixtures and on megabytes of random
// blocks. Skips without CUDA or without a device; the argument checks run without a device.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaDequantize, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cuda_runtime_api.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/dequantize.h"
#include "core/error.h"
#include "support/cuda_test_support.h"
#include "tensor/dequantize.h"
#include "tensor/float_convert.h"
#include "tensor/quant_fixtures.h"
#include "tensor/random_blocks.h"

namespace ebb {
namespace {

using test::cuda_check;
using test::device_present;
using test::DeviceBuffer;

constexpr DType kBlockTypes[] = {DType::Q4_0, DType::Q4_1,   DType::Q5_0,  DType::Q5_1, DType::Q8_0,
                                 DType::Q2_K, DType::Q3_K,   DType::Q4_K,  DType::Q5_K, DType::Q6_K,
                                 DType::Q8_K, DType::IQ4_NL, DType::IQ4_XS};
constexpr DType kOutputs[] = {DType::F32, DType::F16, DType::BF16};

// The bit patterns the GPU must write for CPU results `values`: f32 as is, f16 and bf16 rounded
// by the CPU conversions.
std::vector<uint32_t> expected_bits(const std::vector<float>& values, DType out) {
  std::vector<uint32_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const float v = values[i];
    bits[i] = out == DType::F32   ? std::bit_cast<uint32_t>(v)
              : out == DType::F16 ? f32_to_f16(v)
                                  : f32_to_bf16(v);
  }
  return bits;
}

float bits_value(uint32_t bits, DType out) {
  if (out == DType::F32) return std::bit_cast<float>(bits);
  const auto narrow = static_cast<uint16_t>(bits);
  return out == DType::F16 ? f16_to_f32(narrow) : bf16_to_f32(narrow);
}

// NaN payloads differ between x86 and the GPU (see backend/cuda/dequantize.h); any other value
// must match exactly.
bool same_value(uint32_t got, uint32_t want, DType out) {
  return got == want || (std::isnan(bits_value(got, out)) && std::isnan(bits_value(want, out)));
}

std::vector<uint32_t> read_back(const std::byte* dev, uint64_t elems, DType out) {
  const size_t width = out == DType::F32 ? 4 : 2;
  std::vector<std::byte> raw(elems * width);
  cuda_check(cudaMemcpy(raw.data(), dev, raw.size(), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
  std::vector<uint32_t> bits(elems);
  for (uint64_t i = 0; i < elems; ++i) {
    if (width == 4) {
      std::memcpy(&bits[i], raw.data() + 4 * i, 4);
    } else {
      uint16_t narrow;
      std::memcpy(&narrow, raw.data() + 2 * i, 2);
      bits[i] = narrow;
    }
  }
  return bits;
}

void expect_same(const std::vector<uint32_t>& got, const std::vector<uint32_t>& want, DType t,
                 DType out, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  uint64_t mismatches = 0, first = 0;
  for (uint64_t i = 0; i < got.size(); ++i) {
    if (same_value(got[i], want[i], out)) continue;
    if (mismatches++ == 0) first = i;
  }
  if (mismatches == 0) return;
  const uint32_t block_elems = dtype_info(t).block_elems;
  ADD_FAILURE() << dtype_name(t) << " -> " << dtype_name(out) << " (" << what << "): " << mismatches
                << " of " << got.size() << " elements differ; first is element " << first
                << " (block " << first / block_elems << ", index " << first % block_elems
                << "): GPU 0x" << std::hex << got[first] << std::dec << " ("
                << bits_value(got[first], out) << "), CPU 0x" << std::hex << want[first] << std::dec
                << " (" << bits_value(want[first], out) << ")";
}

class CudaDequantize : public test::CudaStreamTest {
 protected:
  // Decodes `blocks` of type `t` on the GPU into every output type, the source placed
  // `src_offset` bytes into its buffer, and compares with `want` (f32 values of the CPU path).
  // Each output is decoded twice over different poison (all-ones bytes, a NaN in every output
  // type, then zeros), so that no element the kernel leaves unwritten can pass.
  void expect_matches(DType t, const std::vector<std::byte>& blocks, const std::vector<float>& want,
                      size_t src_offset, const std::string& what) {
    const uint64_t elems = want.size();
    DeviceBuffer src(blocks.size() + src_offset);
    cuda_check(
        cudaMemcpy(src.get() + src_offset, blocks.data(), blocks.size(), cudaMemcpyHostToDevice),
        "cudaMemcpy H2D");
    DeviceBuffer dst(elems * sizeof(float));
    for (DType out : kOutputs) {
      const std::vector<uint32_t> want_bits = expected_bits(want, out);
      const size_t dst_bytes = elems * (out == DType::F32 ? 4 : 2);
      for (int poison : {0xFF, 0x00}) {
        cuda_check(cudaMemsetAsync(dst.get(), poison, dst_bytes, stream_), "cudaMemsetAsync");
        cuda_dequantize(t, src.get() + src_offset, dst.get(), out, elems, stream_);
        cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
        expect_same(read_back(dst.get(), elems, out), want_bits, t, out,
                    what + ", poison " + std::to_string(poison));
      }
    }
  }
};

std::vector<float> cpu_decode(DType t, const std::vector<std::byte>& blocks) {
  const DTypeInfo& info = dtype_info(t);
  std::vector<float> values(blocks.size() / info.block_bytes * info.block_elems);
  dequantize_to_f32(t, blocks.data(), values.data(), values.size());
  return values;
}

// An odd number of blocks totalling about `bytes`.
uint64_t odd_block_count(DType t, size_t bytes) {
  return (bytes / dtype_info(t).block_bytes) | 1;
}

TEST_F(CudaDequantize, MatchesGgufPyFixtures) {
  for (DType t : kBlockTypes) {
    if (t == DType::Q8_K) continue;  // gguf-py has no Q8_K dequantizer, so no fixture
    const std::string name(dtype_name(t));
    const auto blocks = test::read_quant_fixture<std::byte>(name + ".bin");
    const auto want_bits = test::read_quant_fixture<uint32_t>(name + ".f32");
    std::vector<float> want(want_bits.size());
    std::memcpy(want.data(), want_bits.data(), want.size() * sizeof(float));
    ASSERT_EQ(want.size(), blocks.size() / dtype_info(t).block_bytes * dtype_info(t).block_elems)
        << name;
    expect_matches(t, blocks, want, 0, "gguf-py fixture");
  }
}

// Several megabytes per type, at value scales that give f16 subnormals, ordinary values and
// values near the top of the f16 range.
TEST_F(CudaDequantize, MatchesCpuOnLargeRandomBlocks) {
  constexpr size_t kBytes = 6 << 20;
  for (DType t : kBlockTypes) {
    for (float scale : {1e-3f, 1.0f, 6e4f}) {
      std::vector<std::byte> blocks(odd_block_count(t, kBytes) * dtype_info(t).block_bytes);
      fill_random(t, blocks, static_cast<uint64_t>(t) * 1000 + static_cast<uint64_t>(scale), scale);
      expect_matches(t, blocks, cpu_decode(t, blocks), 0,
                     "fill_random scale " + std::to_string(scale));
    }
  }
}

// Arbitrary bytes: scales of every f16 pattern, infinities and NaN included, and a source at
// an odd address.
TEST_F(CudaDequantize, MatchesCpuOnArbitraryBytesFromUnalignedSource) {
  std::mt19937_64 rng(7);
  for (DType t : kBlockTypes) {
    std::vector<std::byte> blocks(odd_block_count(t, 1 << 20) * dtype_info(t).block_bytes);
    for (auto& b : blocks) b = static_cast<std::byte>(rng());
    expect_matches(t, blocks, cpu_decode(t, blocks), 3, "random bytes, source offset 3");
  }
}

// Loading code decodes a tensor in block ranges into one destination.
TEST_F(CudaDequantize, BlockRangesEqualWhole) {
  for (DType t : kBlockTypes) {
    const DTypeInfo& info = dtype_info(t);
    const uint64_t blocks = 1001, split = 333;
    std::vector<std::byte> host(blocks * info.block_bytes);
    fill_random(t, host, 99, 1.0f);
    const std::vector<float> want = cpu_decode(t, host);
    DeviceBuffer src(host.size());
    cuda_check(cudaMemcpy(src.get(), host.data(), host.size(), cudaMemcpyHostToDevice),
               "cudaMemcpy H2D");
    DeviceBuffer dst(want.size() * sizeof(float));
    for (DType out : kOutputs) {
      const size_t width = out == DType::F32 ? 4 : 2;
      cuda_check(cudaMemsetAsync(dst.get(), 0xFF, want.size() * width, stream_), "cudaMemsetAsync");
      cuda_dequantize(t, src.get(), dst.get(), out, split * info.block_elems, stream_);
      cuda_dequantize(t, src.get() + split * info.block_bytes,
                      dst.get() + split * info.block_elems * width, out,
                      (blocks - split) * info.block_elems, stream_);
      cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
      expect_same(read_back(dst.get(), want.size(), out), expected_bits(want, out), t, out,
                  "two block ranges");
    }
  }
}

// Argument checks happen before any CUDA call, so they run without a device; the pointers are
// never dereferenced.
TEST(CudaDequantizeArguments, RejectsBadRequestsBeforeLaunching) {
  void* const aligned = reinterpret_cast<void*>(uintptr_t{1} << 20);
  void* const misaligned = reinterpret_cast<void*>((uintptr_t{1} << 20) + 8);
  for (DType t : kBlockTypes) {
    const uint32_t block_elems = dtype_info(t).block_elems;
    EXPECT_THROW(cuda_dequantize(t, aligned, aligned, DType::F16, block_elems + 1, nullptr), Error)
        << dtype_name(t);
    EXPECT_THROW(cuda_dequantize(t, aligned, aligned, DType::F16, block_elems / 2, nullptr), Error)
        << dtype_name(t);
    EXPECT_THROW(cuda_dequantize(t, aligned, misaligned, DType::F32, block_elems, nullptr), Error)
        << dtype_name(t);
    for (DType out : {DType::F64, DType::F8_E4M3, DType::I32, DType::Q8_0}) {
      EXPECT_THROW(cuda_dequantize(t, aligned, aligned, out, 0, nullptr), Error)
          << dtype_name(t) << " -> " << dtype_name(out);
    }
    // Nothing to decode: no launch, no error.
    EXPECT_NO_THROW(cuda_dequantize(t, aligned, aligned, DType::BF16, 0, nullptr)) << dtype_name(t);
  }
}

TEST(CudaDequantizeArguments, OnlyBlockTypesAreSupported) {
  for (int i = 0; i < kDTypeCount; ++i) {
    const auto t = static_cast<DType>(i);
    EXPECT_EQ(cuda_can_dequantize(t), dtype_info(t).quantized) << dtype_name(t);
    if (!dtype_info(t).quantized) {
      EXPECT_THROW(cuda_dequantize(t, nullptr, nullptr, DType::F32, 0, nullptr), Error)
          << dtype_name(t);
    }
  }
}

TEST(CudaDequantizeArguments, ErrorsNameTheProblem) {
  try {
    cuda_dequantize(DType::Q4_K, nullptr, nullptr, DType::F16, 300, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "cuda_dequantize Q4_K: 300 elements is not a multiple of its block size 256");
  }
}

}  // namespace
}  // namespace ebb

#endif  // EBB_HAVE_CUDA
