#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "backend/cuda/attention.h"
#include "backend/cuda/attention_kernel.cuh"
#include "core/error.h"

namespace ebb {
namespace {

using attention_kernel::Params;
using attention_kernel::RowStrides;

constexpr int64_t kHeadDims[] = {40, 64, 80, 128, 160, 512};

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail("cuda_attention: {} failed: {}", what, cudaGetErrorString(err));
}

bool aligned_16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

RowStrides checked_strides(const void* data, const cpu::Strides4& s, const char* name) {
  if (data == nullptr) fail("cuda_attention: {} is null", name);
  if (!aligned_16(data)) fail("cuda_attention: {} is not 16-byte aligned", name);
  if (s.col != 1) fail("cuda_attention: {} channel stride is {}, must be 1", name, s.col);
  if (s.batch % 8 != 0 || s.head % 8 != 0 || s.row % 8 != 0)
    fail("cuda_attention: {} strides (batch {}, head {}, row {}) must be multiples of 8 elements",
         name, s.batch, s.head, s.row);
  return {s.batch, s.head, s.row};
}

void check_shape(const CudaAttentionArgs& a) {
  if (a.dtype != DType::F16 && a.dtype != DType::BF16)
    fail("cuda_attention: dtype {} is not supported (F16 or BF16)", dtype_name(a.dtype));
  if (!cuda_attention_supports_head_dim(a.head_dim))
    fail("cuda_attention: head_dim {} is not supported (only {})", a.head_dim,
         fmt::join(kHeadDims, ", "));
  // Rows are int in the kernel (with room for a tile past the end); batch and heads are grid
  // dimensions.
  constexpr int64_t kMaxLen = std::numeric_limits<int>::max() / 2;
  constexpr int64_t kMaxGrid = 65535;
  if (a.batch < 0 || a.batch > kMaxGrid || a.heads < 0 || a.heads > kMaxGrid || a.q_len < 0 ||
      a.q_len > kMaxLen || a.kv_len < 1 || a.kv_len > kMaxLen)
    fail("cuda_attention: invalid shape batch={} heads={} q_len={} kv_len={} head_dim={}", a.batch,
         a.heads, a.q_len, a.kv_len, a.head_dim);
  if (a.scale && !(*a.scale > 0.0f && std::isfinite(*a.scale)))
    fail("cuda_attention: scale {} must be positive and finite", *a.scale);
}

using attention_tiling::Tiling;

// The tilings of each head dimension (attention_tiling.cuh says what the numbers mean): Wide,
// and Narrow (fewer query rows per block) for problems whose Wide blocks would not keep every
// multiprocessor busy: used when Wide would launch fewer than kNarrowBelow blocks per
// multiprocessor. Chosen from measurements on the H100 (docs/benchmarks.md).
template <int kHeadDim>
struct TilingsFor;
template <>
struct TilingsFor<40> {
  using Wide = Tiling<40, 4, 2, 64, 2, 1, 2>;
  using Narrow = Wide;
  static constexpr double kNarrowBelow = 0;
};
template <>
struct TilingsFor<64> {
  using Wide = Tiling<64, 4, 2, 64, 2, 1, 2>;
  using Narrow = Tiling<64, 4, 1, 64, 2, 1, 2>;
  static constexpr double kNarrowBelow = 3;
};
template <>
struct TilingsFor<80> {
  using Wide = Tiling<80, 4, 2, 32, 2, 1, 2>;
  using Narrow = Tiling<80, 4, 1, 64, 2, 1, 2, true>;
  static constexpr double kNarrowBelow = 3;
};
template <>
struct TilingsFor<128> {
  using Wide = Tiling<128, 8, 1, 64, 2, 1, 1, true>;
  using Narrow = Wide;
  static constexpr double kNarrowBelow = 0;
};
template <>
struct TilingsFor<160> {
  using Wide = Tiling<160, 8, 1, 64, 2, 1, 1, true>;
  using Narrow = Tiling<160, 4, 1, 32, 2, 1, 1, true>;
  static constexpr double kNarrowBelow = 0.5;
};
template <>
struct TilingsFor<512> {
  using Wide = Tiling<512, 8, 1, 16, 2, 4>;
  using Narrow = Wide;
  static constexpr double kNarrowBelow = 0;
};

template <class T>
int64_t blocks_of(const Params& p, int batch, int heads) {
  using L = attention_tiling::Layout<T>;
  return (p.q_len + L::kBlockRows - 1) / L::kBlockRows * int64_t{heads} * batch;
}

int multiprocessors() {
  int device = 0, count = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device),
             "cudaDeviceGetAttribute");
  return count;
}

template <bool kBf16, class T>
void launch(const Params& p, int batch, int heads, cudaStream_t stream) {
  using L = attention_tiling::Layout<T>;
  auto* kernel = attention_kernel::flash_attention<kBf16, T>;
  // Above 48 KB a block's shared memory must be asked for; a device with less than the kernel
  // needs refuses here.
  const cudaError_t attr = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                static_cast<int>(L::kSharedBytes));
  if (attr != cudaSuccess)
    fail("cuda_attention: head_dim {} needs {} bytes of shared memory per block: {}", L::kHeadDim,
         L::kSharedBytes, cudaGetErrorString(attr));
  const dim3 grid((p.q_len + L::kBlockRows - 1) / L::kBlockRows, heads, batch);
  kernel<<<grid, L::kThreads, L::kSharedBytes, stream>>>(p);
  check_cuda(cudaGetLastError(), "kernel launch");
}

template <bool kBf16, int kHeadDim>
void launch_tiling(const Params& p, int batch, int heads, CudaAttentionTiling tiling,
                   cudaStream_t stream) {
  using Tilings = TilingsFor<kHeadDim>;
  const bool narrow =
      tiling == CudaAttentionTiling::Auto
          ? Tilings::kNarrowBelow > 0 && blocks_of<typename Tilings::Wide>(p, batch, heads) <
                                             Tilings::kNarrowBelow * multiprocessors()
          : tiling == CudaAttentionTiling::Narrow;
  if (narrow)
    launch<kBf16, typename Tilings::Narrow>(p, batch, heads, stream);
  else
    launch<kBf16, typename Tilings::Wide>(p, batch, heads, stream);
}

template <bool kBf16>
void launch_for_head_dim(const Params& p, int64_t head_dim, int batch, int heads,
                         CudaAttentionTiling tiling, cudaStream_t stream) {
  switch (head_dim) {
    case 40:
      return launch_tiling<kBf16, 40>(p, batch, heads, tiling, stream);
    case 64:
      return launch_tiling<kBf16, 64>(p, batch, heads, tiling, stream);
    case 80:
      return launch_tiling<kBf16, 80>(p, batch, heads, tiling, stream);
    case 128:
      return launch_tiling<kBf16, 128>(p, batch, heads, tiling, stream);
    case 160:
      return launch_tiling<kBf16, 160>(p, batch, heads, tiling, stream);
    case 512:
      return launch_tiling<kBf16, 512>(p, batch, heads, tiling, stream);
    default:
      fail("cuda_attention: no kernel for head_dim {}", head_dim);
  }
}

}  // namespace

bool cuda_attention_supports_head_dim(int64_t head_dim) {
  for (const int64_t d : kHeadDims)
    if (d == head_dim) return true;
  return false;
}

void cuda_attention(const CudaAttentionArgs& a, cudaStream_t stream) {
  check_shape(a);
  Params p;
  p.q_strides = checked_strides(a.q, a.q_strides, "q");
  p.k_strides = checked_strides(a.k, a.k_strides, "k");
  p.v_strides = checked_strides(a.v, a.v_strides, "v");
  p.out_strides = checked_strides(a.out, a.out_strides, "out");
  if (a.batch == 0 || a.heads == 0 || a.q_len == 0) return;
  p.q = static_cast<const uint16_t*>(a.q);
  p.k = static_cast<const uint16_t*>(a.k);
  p.v = static_cast<const uint16_t*>(a.v);
  p.out = static_cast<uint16_t*>(a.out);
  p.q_len = static_cast<int>(a.q_len);
  p.kv_len = static_cast<int>(a.kv_len);
  const float scale = a.scale ? *a.scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
  // The softmax runs in base 2: e^(x·scale) = 2^(x·scale·log2 e).
  p.scale_log2 = scale * 1.44269504088896341f;
  const int batch = static_cast<int>(a.batch), heads = static_cast<int>(a.heads);
  if (a.dtype == DType::BF16)
    launch_for_head_dim<true>(p, a.head_dim, batch, heads, a.tiling, stream);
  else
    launch_for_head_dim<false>(p, a.head_dim, batch, heads, a.tiling, stream);
}

}  // namespace ebb
