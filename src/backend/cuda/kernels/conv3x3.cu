#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "backend/cuda/attention_ptx.cuh"
#include "backend/cuda/kernels/conv3x3.h"
#include "backend/cuda/kernels/grid_stride.cuh"
#include "backend/cuda/kernels/launch.h"
#include "backend/cuda/kernels/numeric.cuh"

namespace ebb::cuda {
namespace {

using namespace attention_ptx;

// Fewer blocks than this leave some of the H100's 132 SMs idle or unevenly loaded: take
// narrower tiles, then split the reduction.
constexpr int64_t kEnoughBlocks = 240;

// From 128x128 pixels on (the UNet's first level at 1024²) the 128-channel tiles' reuse outweighs
// the idle rows of a partial last tile: 320 output channels run 8-13% faster on them than on
// 64-channel tiles or im2col + GEMM (docs/benchmarks.md).
constexpr int64_t kLargeImage = 128 * 128;

// A block computes m output channels x n pixels with warps_m x warps_n warps, k weight columns
// (input channel·tap pairs) per pipeline stage.
struct Tiling {
  int m, n, warps_m, warps_n, k, stages;
};
// Measured on the H100 (docs/benchmarks.md): 64x64 outputs per warp keep the shared-memory
// reads per product lowest; 32-column stages, 4 of them, beat 64-column ones at the shapes the
// kernel runs.
constexpr Tiling kTilings[] = {
    {128, 128, 2, 2, 32, 4}, {64, 128, 1, 2, 32, 4}, {64, 64, 2, 2, 32, 4}};
constexpr int kTilingCount = sizeof(kTilings) / sizeof(kTilings[0]);

struct Params {
  const uint16_t* w;        // [O, K]
  const uint16_t* shifted;  // [N, 3, C, plane]
  const void* bias;
  void* out;        // band start of [N, O, H·W]
  float* partials;  // [splits, N, O, pixels]
  int images, channels, outputs, width, k, pixels, plane, ktiles, ktiles_per_split, splits;
  int64_t out_image, out_channel;  // element strides of out
};

__device__ __forceinline__ float bias_value(const __half* b, int o) {
  return b ? __half2float(b[o]) : 0.0f;
}
__device__ __forceinline__ float bias_value(const __nv_bfloat16* b, int o) {
  return b ? __bfloat162float(b[o]) : 0.0f;
}

// Shared rows are XOR-swizzled in 16-byte chunks so that the 8 row addresses of one ldmatrix
// fall in distinct banks: rows of 4 chunks share a 128-byte bank line by two, longer rows
// span whole lines.
template <int kChunks>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  if constexpr (kChunks == 4)
    return chunk ^ ((row >> 1) & 3);
  else
    return chunk ^ (row & 7);
}

// Blocks per SM the registers must allow: warps with 64x64 outputs need up to 255 registers
// per thread (256 threads per SM), smaller ones fit 512 threads.
constexpr int min_blocks(const Tiling& t) {
  const int warps = t.warps_m * t.warps_n;
  return (t.m / t.warps_m) * (t.n / t.warps_n) >= 64 * 64 ? 8 / warps : 16 / warps;
}

template <typename T, int kTiling>
__global__ void __launch_bounds__(kTilings[kTiling].warps_m* kTilings[kTiling].warps_n * 32,
                                  min_blocks(kTilings[kTiling])) conv3x3_kernel(Params p) {
  constexpr Tiling kT = kTilings[kTiling];
  constexpr int kM = kT.m, kN = kT.n, kWarpsM = kT.warps_m, kWarpsN = kT.warps_n;
  constexpr int kTileK = kT.k, kStages = kT.stages;
  constexpr bool kBf16 = std::is_same_v<T, __nv_bfloat16>;
  constexpr int kThreads = kWarpsM * kWarpsN * 32;
  constexpr int kWarpM = kM / kWarpsM, kWarpN = kN / kWarpsN;
  constexpr int kFragsM = kWarpM / 16, kFragsN = kWarpN / 8;
  constexpr int kStageA = kM * kTileK, kStageB = kTileK * kN;  // elements
  constexpr int kChunksA = kTileK / 8, kChunksB = kN / 8;      // 16-byte chunks per row
  static_assert(kM * kChunksA % kThreads == 0 && kTileK * kChunksB % kThreads == 0);
  extern __shared__ __align__(16) unsigned char smem[];
  uint16_t* sa = reinterpret_cast<uint16_t*>(smem);
  uint16_t* sb = sa + kStages * kStageA;

  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp / kWarpsN, warp_n = warp % kWarpsN;
  const int n0 = static_cast<int>(blockIdx.x) * kN, m0 = static_cast<int>(blockIdx.y) * kM;
  const int image = static_cast<int>(blockIdx.z) / p.splits;
  const int split = static_cast<int>(blockIdx.z) % p.splits;
  const int kt0 = split * p.ktiles_per_split;
  const int kt_count = min(p.ktiles_per_split, p.ktiles - kt0);
  const uint16_t* copies = p.shifted + static_cast<int64_t>(image) * 3 * p.channels * p.plane;

  const auto load = [&](int stage, int kt) {
    const int k0 = kt * kTileK;
#pragma unroll
    for (int j = 0; j < kM * kChunksA / kThreads; ++j) {
      const int i = tid + j * kThreads, row = i / kChunksA, chunk = i % kChunksA, o = m0 + row;
      const uint16_t* src =
          p.w + static_cast<int64_t>(min(o, p.outputs - 1)) * p.k + k0 + chunk * 8;
      copy_16_async(
          shared_address(sa + stage * kStageA + row * kTileK + swizzle<kChunksA>(row, chunk) * 8),
          src, o < p.outputs);
    }
#pragma unroll
    for (int j = 0; j < kTileK * kChunksB / kThreads; ++j) {
      const int i = tid + j * kThreads, row = i / kChunksB, chunk = i % kChunksB,
                pixel = n0 + chunk * 8;
      const int k = k0 + row, c = k / 9, tap = k - c * 9, ky = tap / 3, kx = tap - ky * 3;
      const uint16_t* src = copies + static_cast<int64_t>(kx * p.channels + c) * p.plane +
                            ky * p.width + min(pixel, p.pixels - 8);
      copy_16_async(
          shared_address(sb + stage * kStageB + row * kN + swizzle<kChunksB>(row, chunk) * 8), src,
          pixel < p.pixels);
    }
  };

  float acc[kFragsM][kFragsN][4] = {};
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < kt_count) load(s, kt0 + s);
    commit_async_copies();
  }
  for (int t = 0; t < kt_count; ++t) {
    wait_async_copies<kStages - 2>();
    __syncthreads();
    // The stage refilled here was read in the previous iteration, which every thread has left.
    if (t + kStages - 1 < kt_count) load((t + kStages - 1) % kStages, kt0 + t + kStages - 1);
    commit_async_copies();
    const uint16_t* a_stage = sa + (t % kStages) * kStageA;
    const uint16_t* b_stage = sb + (t % kStages) * kStageB;
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      uint32_t a[kFragsM][4], b[kFragsN][2];
#pragma unroll
      for (int mi = 0; mi < kFragsM; ++mi) {
        const int row = warp_m * kWarpM + mi * 16 + (lane & 15), chunk = kk / 8 + (lane >> 4);
        load_matrix_x4(a[mi],
                       shared_address(a_stage + row * kTileK + swizzle<kChunksA>(row, chunk) * 8));
      }
#pragma unroll
      for (int nj = 0; nj < kFragsN / 2; ++nj) {
        const int row = kk + (lane & 7) + ((lane >> 3) & 1) * 8;
        const int chunk = (warp_n * kWarpN + nj * 16) / 8 + (lane >> 4);
        uint32_t r[4];
        load_matrix_x4_transposed(
            r, shared_address(b_stage + row * kN + swizzle<kChunksB>(row, chunk) * 8));
        b[2 * nj][0] = r[0];
        b[2 * nj][1] = r[1];
        b[2 * nj + 1][0] = r[2];
        b[2 * nj + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < kFragsM; ++mi)
#pragma unroll
        for (int ni = 0; ni < kFragsN; ++ni)
          mma_16x8x16<kBf16>(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
    }
  }
  wait_async_copies<0>();

  // Accumulator rows are output channels, columns pixels: pairs of adjacent pixels per store.
  const T* bias = static_cast<const T*>(p.bias);
#pragma unroll
  for (int mi = 0; mi < kFragsM; ++mi)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int o = m0 + warp_m * kWarpM + mi * 16 + (lane >> 2) + half * 8;
      if (o >= p.outputs) continue;
      const float add = p.splits == 1 ? bias_value(bias, o) : 0.0f;
#pragma unroll
      for (int ni = 0; ni < kFragsN; ++ni) {
        const int pixel = n0 + warp_n * kWarpN + ni * 8 + (lane & 3) * 2;
        if (pixel >= p.pixels) continue;
        const float v0 = acc[mi][ni][half * 2] + add, v1 = acc[mi][ni][half * 2 + 1] + add;
        if (p.splits == 1) {
          T* dst = static_cast<T*>(p.out) + image * p.out_image + o * p.out_channel + pixel;
          *reinterpret_cast<uint32_t*>(dst) = pack_pair<kBf16>(v0, v1);
        } else {
          float* dst =
              p.partials +
              ((static_cast<int64_t>(split) * p.images + image) * p.outputs + o) * p.pixels + pixel;
          *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
        }
      }
    }
}

// shifted[n, kx, c, y, x] = x[n, c, y0 + y - 1, x + kx - 1] (zero outside the image) for the
// band's rows y in [0, rows + 2): each thread 8 pixels of one row, for all three shifts.
__global__ void shift_kernel(const uint16_t* __restrict__ x, uint16_t* __restrict__ shifted,
                             int channels, int height, int width, int y0, int band_height,
                             int64_t chunks) {
  const int per_row = width / 8;
  for_each_index(chunks, [&](int64_t i) {
    const int j = static_cast<int>(i % per_row);
    int64_t rest = i / per_row;
    const int yy = static_cast<int>(rest % band_height);
    rest /= band_height;
    const int c = static_cast<int>(rest % channels);
    const int64_t n = rest / channels;
    const int y = y0 - 1 + yy;
    uint16_t v[10] = {};  // the row's pixels j·8 - 1 .. j·8 + 8
    if (y >= 0 && y < height) {
      const uint16_t* row = x + ((n * channels + c) * height + y) * width + j * 8;
      alignas(16) uint16_t middle[8];
      *reinterpret_cast<uint4*>(middle) = *reinterpret_cast<const uint4*>(row);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e + 1] = middle[e];
      if (j > 0) v[0] = row[-1];
      if (j + 1 < per_row) v[9] = row[8];
    }
    const int64_t plane = int64_t(band_height) * width;
    uint16_t* dst = shifted + (n * 3 * channels + c) * plane + int64_t(yy) * width + j * 8;
#pragma unroll
    for (int kx = 0; kx < 3; ++kx) {
      alignas(16) uint16_t s[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) s[e] = v[e + kx];
      *reinterpret_cast<uint4*>(dst + int64_t(kx) * channels * plane) =
          *reinterpret_cast<const uint4*>(s);
    }
  });
}

// out = bias + the split's partial sums, added in split order.
template <typename T>
__global__ void reduce_kernel(const float* __restrict__ partials, const T* __restrict__ bias,
                              T* __restrict__ out, int splits, int outputs, int pixels,
                              int64_t out_image, int64_t out_channel, int64_t total) {
  for_each_index(total, [&](int64_t i) {
    const int pixel = static_cast<int>(i % pixels);
    const int o = static_cast<int>(i / pixels % outputs);
    const int64_t image = i / (int64_t(pixels) * outputs);
    float s = bias_value(bias, o);
    for (int k = 0; k < splits; ++k) s += partials[k * total + i];
    out[image * out_image + o * out_channel + pixel] = from_f32<T>(s);
  });
}

template <int kTiling>
constexpr int smem_bytes() {
  constexpr Tiling t = kTilings[kTiling];
  return t.stages * (t.m * t.k + t.k * t.n) * 2;
}

template <typename T, int kTiling>
void launch_conv(const Params& p, cudaStream_t stream) {
  constexpr Tiling t = kTilings[kTiling];
  const auto kernel = conv3x3_kernel<T, kTiling>;
  constexpr int smem = smem_bytes<kTiling>();
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "conv3x3: shared memory size");
  const dim3 grid(static_cast<unsigned>((p.pixels + t.n - 1) / t.n),
                  static_cast<unsigned>((p.outputs + t.m - 1) / t.m),
                  static_cast<unsigned>(p.images * p.splits));
  kernel<<<grid, t.warps_m * t.warps_n * 32, smem, stream>>>(p);
  check_launch("conv3x3");
}

template <typename T, int... kIndex>
void launch_tiling(int tiling, const Params& p, cudaStream_t stream,
                   std::integer_sequence<int, kIndex...>) {
  ((tiling == kIndex ? launch_conv<T, kIndex>(p, stream) : void()), ...);
}

template <typename T>
void run(const Conv3x3Plan& plan, const Conv3x3Args& a, cudaStream_t stream) {
  const Conv3x3Shape& s = a.shape;
  const Tiling t = kTilings[plan.tiling];
  const int64_t image_pixels = s.height * s.width;
  for (int64_t y0 = 0; y0 < s.height; y0 += plan.band_rows) {
    const int64_t rows = std::min(plan.band_rows, s.height - y0);
    const int64_t chunks = s.batch * s.channels * (rows + 2) * (s.width / 8);
    shift_kernel<<<grid_for(chunks, 256), 256, 0, stream>>>(
        static_cast<const uint16_t*>(a.x), static_cast<uint16_t*>(a.shifted),
        static_cast<int>(s.channels), static_cast<int>(s.height), static_cast<int>(s.width),
        static_cast<int>(y0), static_cast<int>(rows + 2), chunks);
    check_launch("conv3x3 shift");
    Params p;
    p.w = static_cast<const uint16_t*>(a.w);
    p.shifted = static_cast<const uint16_t*>(a.shifted);
    p.bias = a.bias;
    p.out = static_cast<T*>(a.out) + y0 * s.width;
    p.partials = a.partials;
    p.images = static_cast<int>(s.batch);
    p.channels = static_cast<int>(s.channels);
    p.outputs = static_cast<int>(s.outputs);
    p.width = static_cast<int>(s.width);
    p.k = static_cast<int>(s.channels * 9);
    p.pixels = static_cast<int>(rows * s.width);
    p.plane = static_cast<int>((rows + 2) * s.width);
    p.ktiles = p.k / t.k;
    p.splits = plan.splits;
    p.ktiles_per_split = (p.ktiles + plan.splits - 1) / plan.splits;
    p.out_image = s.outputs * image_pixels;
    p.out_channel = image_pixels;
    launch_tiling<T>(plan.tiling, p, stream, std::make_integer_sequence<int, kTilingCount>());
    if (plan.splits > 1) {
      const int64_t total = s.batch * s.outputs * p.pixels;
      reduce_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(
          a.partials, static_cast<const T*>(a.bias), static_cast<T*>(p.out), plan.splits, p.outputs,
          p.pixels, p.out_image, p.out_channel, total);
      check_launch("conv3x3 reduce");
    }
  }
}

}  // namespace

bool conv3x3_applies(const Conv3x3Shape& s) {
  const int64_t padded = s.batch * 3 * s.channels * (s.height + 2) * s.width;
  return s.batch > 0 && s.channels > 0 && s.channels % 32 == 0 && s.outputs > 0 && s.height > 0 &&
         s.width > 0 && s.width % 8 == 0 && padded <= INT32_MAX &&
         s.outputs * s.channels * 9 <= INT32_MAX &&
         s.batch * s.outputs * s.height * s.width <= INT64_C(1) << 40;
}

bool conv3x3_beats_im2col(const Conv3x3Shape& s) {
  const int64_t pixels = s.height * s.width;
  return s.outputs <= 256 || pixels <= 64 || (s.outputs <= 320 && pixels >= kLargeImage);
}

int conv3x3_tilings() {
  return kTilingCount;
}

Conv3x3Plan conv3x3_plan(const Conv3x3Shape& s, uint64_t element_bytes, uint64_t max_scratch_bytes,
                         int tiling) {
  Conv3x3Plan plan;
  const uint64_t row_bytes =
      3 * static_cast<uint64_t>(s.batch * s.channels * s.width) * element_bytes;
  const auto fit = static_cast<int64_t>(max_scratch_bytes / row_bytes) - 2;
  plan.band_rows = std::min(s.height, fit);
  if (plan.band_rows < 1 || (tiling >= 0 && s.channels * 9 % kTilings[tiling].k != 0)) {
    plan.band_rows = 0;
    return plan;
  }
  const int64_t pixels = plan.band_rows * s.width;
  plan.shifted_elems = s.batch * 3 * s.channels * (plan.band_rows + 2) * s.width;
  const auto blocks = [&](int t) {
    return (s.outputs + kTilings[t].m - 1) / kTilings[t].m *
           ((pixels + kTilings[t].n - 1) / kTilings[t].n) * s.batch;
  };
  // Wide tiles reuse each loaded element most; narrower ones where wide ones leave SMs idle.
  if (tiling >= 0) {
    plan.tiling = tiling;
  } else {
    const bool fills_wide = s.outputs % 128 == 0 || (s.outputs >= 320 && pixels >= kLargeImage);
    plan.tiling = pixels <= 64 ? 2 : fills_wide ? 0 : 1;
    if (plan.tiling == 0 && blocks(0) < kEnoughBlocks) plan.tiling = 1;
  }
  const int64_t ktiles = s.channels * 9 / kTilings[plan.tiling].k;
  if (blocks(plan.tiling) < kEnoughBlocks) {
    // Each split keeps at least 16 k-tiles so that the pipeline runs full most of the time.
    const int64_t wanted = (kEnoughBlocks + blocks(plan.tiling) - 1) / blocks(plan.tiling);
    plan.splits = static_cast<int>(std::clamp<int64_t>(std::min(wanted, ktiles / 16), 1, 16));
    const int64_t per_split = (ktiles + plan.splits - 1) / plan.splits;
    plan.splits = static_cast<int>((ktiles + per_split - 1) / per_split);  // none left empty
  }
  if (plan.splits > 1) plan.partial_floats = plan.splits * s.batch * s.outputs * pixels;
  return plan;
}

void conv3x3(const Conv3x3Plan& plan, const Conv3x3Args& a, cudaStream_t stream) {
  if (plan.band_rows < 1) fail("conv3x3: no band of rows fits the scratch bound");
  switch (a.dtype) {
    case DType::F16:
      return run<__half>(plan, a, stream);
    case DType::BF16:
      return run<__nv_bfloat16>(plan, a, stream);
    default:
      fail("conv3x3: {} is not F16 or BF16", dtype_name(a.dtype));
  }
}

}  // namespace ebb::cuda
