#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/dequantize.h"
#include "core/error.h"

namespace ebb {
namespace {

// Each thread decodes kRun consecutive elements that share one scale (groups are 16 or 32
// elements), so it decodes the scale once and writes 16 or 32 contiguous bytes; a warp writes
// one contiguous run of 256 elements.
constexpr int kRun = 8;
constexpr int kThreads = 256;

// The f32 operations and their order are those of tensor/dequantize.cpp. The _rn intrinsics
// keep nvcc from fusing a product and a sum into one FMA (which rounds once instead of twice);
// every product here is exact in f32, so fusing would in fact be harmless, but spelling the
// operations out keeps the equality with the CPU path independent of that argument.
// Subnormal results (Q8_K's f32 scales can give them) are kept, as on the CPU, because the
// build does not flush them (no --use_fast_math, no -ftz=true).
__device__ __forceinline__ float mul(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ float add(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ __forceinline__ float sub(float a, float b) {
  return __fsub_rn(a, b);
}
__device__ __forceinline__ float to_f32(int v) {
  return static_cast<float>(v);
}

// Blocks lie at any byte offset, so multi-byte fields are assembled from bytes.
__device__ __forceinline__ uint32_t u16_at(const uint8_t* p) {
  return p[0] | static_cast<uint32_t>(p[1]) << 8;
}
// Exact, like f16_to_f32: the hardware conversion handles subnormals and infinities.
__device__ __forceinline__ float f16_at(const uint8_t* p) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(u16_at(p))));
}
__device__ __forceinline__ float f32_at(const uint8_t* p) {
  return __uint_as_float(u16_at(p) | u16_at(p + 2) << 16);
}

// Byte offsets of the fields are those of the structs in tensor/quant_blocks.h, which this
// C++17 translation unit cannot include (it needs C++20). Each decoder writes elements
// j0 .. j0 + kRun - 1 of the block at `b` to `y`; j0 is a multiple of kRun.

// Nibble j % 16 of qs, low for j < 16, high otherwise (Q4_0, Q4_1, Q5_x, IQ4_NL).
__device__ __forceinline__ int nibble(const uint8_t* qs, int j) {
  return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
}

struct Q4_0 {
  static constexpr int kElems = 32, kBytes = 18;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const float d = f16_at(b);
#pragma unroll
    for (int e = 0; e < kRun; ++e) y[e] = mul(d, to_f32(nibble(b + 2, j0 + e) - 8));
  }
};

struct Q4_1 {
  static constexpr int kElems = 32, kBytes = 20;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const float d = f16_at(b);
    const float m = f16_at(b + 2);
#pragma unroll
    for (int e = 0; e < kRun; ++e) y[e] = add(mul(d, to_f32(nibble(b + 4, j0 + e))), m);
  }
};

// Bit j of the 32-bit qh is the fifth bit of element j.
__device__ __forceinline__ int q5(const uint8_t* qh, const uint8_t* qs, int j) {
  return nibble(qs, j) | ((qh[j / 8] >> (j % 8)) & 1) << 4;
}

struct Q5_0 {
  static constexpr int kElems = 32, kBytes = 22;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const float d = f16_at(b);
#pragma unroll
    for (int e = 0; e < kRun; ++e) y[e] = mul(d, to_f32(q5(b + 2, b + 6, j0 + e) - 16));
  }
};

struct Q5_1 {
  static constexpr int kElems = 32, kBytes = 24;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const float d = f16_at(b);
    const float m = f16_at(b + 2);
#pragma unroll
    for (int e = 0; e < kRun; ++e) y[e] = add(mul(d, to_f32(q5(b + 4, b + 8, j0 + e))), m);
  }
};

struct Q8_0 {
  static constexpr int kElems = 32, kBytes = 34;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const float d = f16_at(b);
#pragma unroll
    for (int e = 0; e < kRun; ++e) y[e] = mul(to_f32(static_cast<int8_t>(b[2 + j0 + e])), d);
  }
};

// Element h*128 + s*32 + l: bits 2s..2s+1 of qs[h*32 + l]; scales[j / 16] holds the group's
// scale (low nibble) and min (high nibble).
struct Q2_K {
  static constexpr int kElems = 256, kBytes = 84;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const float d = f16_at(b + 80);
    const float dmin = f16_at(b + 82);
    const uint8_t sc = b[j0 / 16];
    const float dl = mul(d, to_f32(sc & 0xF));
    const float ml = mul(dmin, to_f32(sc >> 4));
    const uint8_t* qs = b + 16 + (j0 / 128) * 32 + j0 % 32;
    const int shift = 2 * (j0 % 128 / 32);
#pragma unroll
    for (int e = 0; e < kRun; ++e) y[e] = sub(mul(dl, to_f32((qs[e] >> shift) & 3)), ml);
  }
};

// Row r = j / 32 (h = r / 4, s = r % 4), l = j % 32: low bits as in Q2_K from qs[h*32 + l],
// minus 4 where bit r of hmask[l] is clear. Six-bit signed scales packed in 12 bytes.
struct Q3_K {
  static constexpr int kElems = 256, kBytes = 110;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const uint8_t* scales = b + 96;
    const int k = j0 / 16;
    const int low = k < 8 ? scales[k] & 0xF : scales[k - 8] >> 4;
    const int high = (scales[8 + k % 4] >> (2 * (k / 4))) & 3;
    const float dl = mul(f16_at(b + 108), to_f32((low | high << 4) - 32));
    const int row = j0 / 32;
    const int l0 = j0 % 32;
    const uint8_t* qs = b + 32 + (row / 4) * 32 + l0;
    const int shift = 2 * (row % 4);
#pragma unroll
    for (int e = 0; e < kRun; ++e) {
      const int offset = (b[l0 + e] >> row) & 1 ? 0 : 4;
      y[e] = mul(dl, to_f32(((qs[e] >> shift) & 3) - offset));
    }
  }
};

// Q4_K and Q5_K: group g = j / 32 takes nibble g % 2 of qs[(g/2)*32 + l]; six-bit scales and
// mins packed in the 12 bytes at offset 4 (ggml's get_scale_min_k4). Q5_K adds bit g of qh[l].
template <int kQsOffset, int kQhOffset, int kBlockBytes>
struct K4Family {
  static constexpr int kElems = 256, kBytes = kBlockBytes;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const uint8_t* s = b + 4;
    const int g = j0 / 32;
    const int sc = g < 4 ? s[g] & 63 : (s[g + 4] & 0xF) | (s[g - 4] >> 6) << 4;
    const int mn = g < 4 ? s[g + 4] & 63 : (s[g + 4] >> 4) | (s[g] >> 6) << 4;
    const float dl = mul(f16_at(b), to_f32(sc));
    const float ml = mul(f16_at(b + 2), to_f32(mn));
    const int l0 = j0 % 32;
    const uint8_t* qs = b + kQsOffset + (g / 2) * 32 + l0;
    const int shift = 4 * (g % 2);
#pragma unroll
    for (int e = 0; e < kRun; ++e) {
      int v = (qs[e] >> shift) & 0xF;
      if constexpr (kQhOffset >= 0) v |= ((b[kQhOffset + l0 + e] >> g) & 1) << 4;
      y[e] = sub(mul(dl, to_f32(v)), ml);
    }
  }
};
using Q4_K = K4Family<16, -1, 144>;
using Q5_K = K4Family<48, 16, 176>;

// Element h*128 + s*32 + l: nibble s/2 of ql[h*64 + (s%2)*32 + l], high bits 2s..2s+1 of
// qh[h*32 + l]; int8 scales[j / 16].
struct Q6_K {
  static constexpr int kElems = 256, kBytes = 210;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const float dl = mul(f16_at(b + 208), to_f32(static_cast<int8_t>(b[192 + j0 / 16])));
    const int h = j0 / 128;
    const int s = j0 % 128 / 32;
    const int l0 = j0 % 32;
    const uint8_t* ql = b + h * 64 + (s % 2) * 32 + l0;
    const uint8_t* qh = b + 128 + h * 32 + l0;
#pragma unroll
    for (int e = 0; e < kRun; ++e) {
      const int q = ((ql[e] >> (4 * (s / 2))) & 0xF) | ((qh[e] >> (2 * s)) & 3) << 4;
      y[e] = mul(dl, to_f32(q - 32));
    }
  }
};

struct Q8_K {
  static constexpr int kElems = 256, kBytes = 292;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const float d = f32_at(b);
#pragma unroll
    for (int e = 0; e < kRun; ++e) y[e] = mul(d, to_f32(static_cast<int8_t>(b[4 + j0 + e])));
  }
};

// kIq4Values of quant_blocks.h, four int8 entries per word (entry 0 in the low byte).
constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113};
constexpr uint32_t iq4_word(int w) {
  uint32_t word = 0;
  for (int i = 3; i >= 0; --i) word = word << 8 | static_cast<uint8_t>(kIq4Values[4 * w + i]);
  return word;
}
constexpr uint32_t kIq4Word0 = iq4_word(0), kIq4Word1 = iq4_word(1), kIq4Word2 = iq4_word(2),
                   kIq4Word3 = iq4_word(3);

// A byte permute on registers instead of a table in memory, which threads of a warp would
// read at up to 16 different addresses.
__device__ __forceinline__ int iq4_value(int q) {
  const uint32_t lo = q < 8 ? kIq4Word0 : kIq4Word2;
  const uint32_t hi = q < 8 ? kIq4Word1 : kIq4Word3;
  return static_cast<int8_t>(__byte_perm(lo, hi, q & 7));
}

struct IQ4_NL {
  static constexpr int kElems = 32, kBytes = 18;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const float d = f16_at(b);
#pragma unroll
    for (int e = 0; e < kRun; ++e) y[e] = mul(d, to_f32(iq4_value(nibble(b + 2, j0 + e))));
  }
};

// Group k = j / 32: scale nibble k%2 of scales_l[k/2] plus bits 2k..2k+1 of scales_h; its
// elements take the nibbles of qs[k*16 .. k*16 + 15] as in IQ4_NL.
struct IQ4_XS {
  static constexpr int kElems = 256, kBytes = 136;
  __device__ static void decode(const uint8_t* b, int j0, float* y) {
    const int k = j0 / 32;
    const int low = (b[4 + k / 2] >> (4 * (k % 2))) & 0xF;
    const int high = (u16_at(b + 2) >> (2 * k)) & 3;
    const float dl = mul(f16_at(b), to_f32((low | high << 4) - 32));
    const uint8_t* qs = b + 8 + k * 16;
#pragma unroll
    for (int e = 0; e < kRun; ++e) y[e] = mul(dl, to_f32(iq4_value(nibble(qs, j0 % 32 + e))));
  }
};

// Stores kRun values at `dst` (aligned to kRun elements) with 16-byte writes.
__device__ __forceinline__ void store(float* dst, const float* y) {
  reinterpret_cast<float4*>(dst)[0] = make_float4(y[0], y[1], y[2], y[3]);
  reinterpret_cast<float4*>(dst)[1] = make_float4(y[4], y[5], y[6], y[7]);
}

template <typename Narrow, typename Round>
__device__ __forceinline__ void store_narrow(Narrow* dst, const float* y, Round round) {
  uint32_t pairs[kRun / 2];
#pragma unroll
  for (int i = 0; i < kRun / 2; ++i) pairs[i] = round(y[2 * i]) | round(y[2 * i + 1]) << 16;
  *reinterpret_cast<uint4*>(dst) = make_uint4(pairs[0], pairs[1], pairs[2], pairs[3]);
}
__device__ __forceinline__ void store(__half* dst, const float* y) {
  store_narrow(dst, y, [](float v) -> uint32_t { return __half_as_ushort(__float2half_rn(v)); });
}
__device__ __forceinline__ void store(__nv_bfloat16* dst, const float* y) {
  store_narrow(dst, y,
               [](float v) -> uint32_t { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); });
}

template <typename Block, typename Out>
__global__ void __launch_bounds__(kThreads)
    dequantize_kernel(const uint8_t* __restrict__ src, Out* __restrict__ dst, uint64_t runs) {
  constexpr int kRunsPerBlock = Block::kElems / kRun;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t r = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < runs;
       r += stride) {
    float y[kRun];
    Block::decode(src + r / kRunsPerBlock * Block::kBytes,
                  static_cast<int>(r % kRunsPerBlock) * kRun, y);
    store(dst + r * kRun, y);
  }
}

// Returns the launch's status.
template <typename Block, typename Out>
cudaError_t launch(const void* src, void* dst, uint64_t elems, cudaStream_t stream) {
  const uint64_t runs = elems / kRun;
  if (runs == 0) return cudaSuccess;
  // Launches of more blocks than the grid allows loop over the rest.
  const uint64_t grid = std::min<uint64_t>((runs + kThreads - 1) / kThreads, 0x7FFFFFFF);
  dequantize_kernel<Block, Out><<<static_cast<unsigned>(grid), kThreads, 0, stream>>>(
      static_cast<const uint8_t*>(src), static_cast<Out*>(dst), runs);
  return cudaGetLastError();
}

template <typename Block>
cudaError_t launch_for_output(DType t, DType out, const void* src, void* dst, uint64_t elems,
                              cudaStream_t stream) {
  switch (out) {
    case DType::F32:
      return launch<Block, float>(src, dst, elems, stream);
    case DType::F16:
      return launch<Block, __half>(src, dst, elems, stream);
    case DType::BF16:
      return launch<Block, __nv_bfloat16>(src, dst, elems, stream);
    default:
      fail("cuda_dequantize {}: cannot write {} (outputs are F32, F16, BF16)", dtype_name(t),
           dtype_name(out));
  }
}

cudaError_t launch_for_type(DType t, DType out, const void* src, void* dst, uint64_t elems,
                            cudaStream_t stream) {
  switch (t) {
    case DType::Q4_0:
      return launch_for_output<Q4_0>(t, out, src, dst, elems, stream);
    case DType::Q4_1:
      return launch_for_output<Q4_1>(t, out, src, dst, elems, stream);
    case DType::Q5_0:
      return launch_for_output<Q5_0>(t, out, src, dst, elems, stream);
    case DType::Q5_1:
      return launch_for_output<Q5_1>(t, out, src, dst, elems, stream);
    case DType::Q8_0:
      return launch_for_output<Q8_0>(t, out, src, dst, elems, stream);
    case DType::Q2_K:
      return launch_for_output<Q2_K>(t, out, src, dst, elems, stream);
    case DType::Q3_K:
      return launch_for_output<Q3_K>(t, out, src, dst, elems, stream);
    case DType::Q4_K:
      return launch_for_output<Q4_K>(t, out, src, dst, elems, stream);
    case DType::Q5_K:
      return launch_for_output<Q5_K>(t, out, src, dst, elems, stream);
    case DType::Q6_K:
      return launch_for_output<Q6_K>(t, out, src, dst, elems, stream);
    case DType::Q8_K:
      return launch_for_output<Q8_K>(t, out, src, dst, elems, stream);
    case DType::IQ4_NL:
      return launch_for_output<IQ4_NL>(t, out, src, dst, elems, stream);
    case DType::IQ4_XS:
      return launch_for_output<IQ4_XS>(t, out, src, dst, elems, stream);
    default:
      fail("cuda_dequantize: {} is not a block-quantized type", dtype_name(t));
  }
}

}  // namespace

bool cuda_can_dequantize(DType t) {
  return dtype_info(t).quantized;
}

void cuda_dequantize(DType t, const void* src, void* dst, DType out, uint64_t elems,
                     cudaStream_t stream) {
  const uint32_t block_elems = dtype_info(t).block_elems;
  if (elems % block_elems != 0)
    fail("cuda_dequantize {}: {} elements is not a multiple of its block size {}", dtype_name(t),
         elems, block_elems);
  if (reinterpret_cast<uintptr_t>(dst) % 16 != 0)
    fail("cuda_dequantize {}: destination {} is not 16-byte aligned", dtype_name(t), dst);
  const cudaError_t err = launch_for_type(t, out, src, dst, elems, stream);
  if (err != cudaSuccess)
    fail("cuda_dequantize {} to {} ({} elements): launch failed: {}", dtype_name(t),
         dtype_name(out), elems, cudaGetErrorString(err));
}

}  // namespace ebb
