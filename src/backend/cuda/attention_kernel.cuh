#pragma once
// The flash-attention kernel (FlashAttention-2 scheme on mma.sync): each warp keeps its query
// rows in registers as mma fragments, key and value tiles stream through shared memory in a
// ring of stages (asynchronous copies of the next tiles overlap the current tile's products),
// and the softmax runs online in registers in base 2. Tiling per head dimension:
// attention_tiling.cuh.
#include <cstdint>

#include "backend/cuda/attention_ptx.cuh"
#include "backend/cuda/attention_tiling.cuh"

namespace ebb::attention_kernel {

// Element strides; channels are contiguous.
struct RowStrides {
  int64_t batch;
  int64_t head;
  int64_t row;
};

struct Params {
  const uint16_t* q;
  RowStrides q_strides;
  const uint16_t* k;
  RowStrides k_strides;
  const uint16_t* v;
  RowStrides v_strides;
  uint16_t* out;
  RowStrides out_strides;
  int q_len;
  int kv_len;
  float scale_log2;  // softmax scale · log2(e), positive
};

// Starts copying rows [row0, row0 + rows) of a matrix of `len` rows of kHeadDim channels into
// shared memory at `dst`, rows kRowStride elements apart; rows from `len` on become zeros.
template <int kHeadDim, int kRowStride>
__device__ __forceinline__ void copy_rows_async(uint32_t dst, const uint16_t* src, int64_t stride,
                                                int row0, int rows, int len) {
  constexpr int kPieces = kHeadDim / 8;
#pragma unroll 1
  for (int c = threadIdx.x; c < rows * kPieces; c += blockDim.x) {
    const int r = c / kPieces, piece = c % kPieces;
    const bool valid = row0 + r < len;
    const uint16_t* from = src + (valid ? row0 + r : 0) * stride + piece * 8;
    attention_ptx::copy_16_async(dst + 2 * (r * kRowStride + piece * 8), from, valid);
  }
}

// Zeroes channels kHeadDim .. kPaddedDim of every row of the shared area, which the
// asynchronous copies never write, so that padded channels add nothing to the scores (the
// query tile and every stage use the same rows).
template <int kHeadDim, typename L>
__device__ __forceinline__ void zero_padding(uint16_t* area) {
  constexpr int kPieces = (L::kPaddedDim - kHeadDim) / 8;
  if constexpr (kPieces > 0) {
    for (int c = threadIdx.x; c < L::kAreaRows * kPieces; c += blockDim.x) {
      const int r = c / kPieces, piece = c % kPieces;
      *reinterpret_cast<uint4*>(area + r * L::kRowStride + kHeadDim + piece * 8) =
          make_uint4(0, 0, 0, 0);
    }
  }
}

// One warp's share of a block: where its rows and channel slice are, its query fragments, its
// output accumulators and the softmax statistics of its rows. Member arrays are indexed only
// with unrolled-loop constants, so they stay in registers.
//
// Steps over a tile take kPartial for the last tile when it runs past kv_len: 16-key chunks
// wholly past the end, whose weights would be zero, are skipped, which saves a third of the
// work for the 77 keys of cross-attention.
template <bool kBf16, int kHeadDim, int kRowTiles_>
struct WarpAttention {
  using L = attention_tiling::Layout<kHeadDim, kRowTiles_>;
  static constexpr int kRowTiles = L::kRowTiles, kKeyTiles = L::kKeyTiles;
  static constexpr int kOutTiles = L::kOutTiles, kSteps = L::kSliceSteps, kStride = L::kRowStride;
  using Scores = float[kRowTiles][kKeyTiles][4];

  int lane, warp, group;
  int warp_row;   // first query row within the block
  int slice_col;  // first channel of the slice
  uint32_t q[kRowTiles][kSteps][4];
  float o[kRowTiles][kOutTiles][4];
  float row_max[kRowTiles][2];  // rows g and g + 8 of each row tile, g = lane / 4
  float row_sum[kRowTiles][2];  // this lane's part; the quad's total at the end

  __device__ __forceinline__ explicit WarpAttention(int thread) {
    lane = thread % 32;
    warp = thread / 32;
    group = warp / L::kDimSplit;
    warp_row = group * L::kWarpRows;
    slice_col = warp % L::kDimSplit * L::kSliceDim;
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) {
#pragma unroll
      for (int nt = 0; nt < kOutTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) o[mt][nt][i] = 0.0f;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        row_max[mt][r] = -__int_as_float(0x7f800000);
        row_sum[mt][r] = 0.0f;
      }
    }
  }

  __device__ __forceinline__ void load_queries(const uint16_t* tile) {
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int ks = 0; ks < kSteps; ++ks) {
        const int row = warp_row + mt * 16 + lane % 8 + (lane / 8 % 2) * 8;
        const int col = slice_col + ks * 16 + (lane / 16) * 8;
        attention_ptx::load_matrix_x4(q[mt][ks],
                                      attention_ptx::shared_address(tile + row * kStride + col));
      }
  }

  // Scores of the warp's rows against a tile of keys, over the warp's channel slice; keys from
  // `valid` on are left at zero when kPartial.
  template <bool kPartial>
  __device__ __forceinline__ void score(const uint16_t* keys, int valid, Scores& s) const {
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) s[mt][nt][i] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks)
#pragma unroll
      for (int np = 0; np < kKeyTiles / 2; ++np) {
        if (kPartial && np * 16 >= valid) continue;
        uint32_t kf[4];
        const int key = np * 16 + lane % 8 + (lane / 16) * 8;
        const int col = slice_col + ks * 16 + (lane / 8 % 2) * 8;
        attention_ptx::load_matrix_x4(kf,
                                      attention_ptx::shared_address(keys + key * kStride + col));
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          attention_ptx::mma_16x8x16<kBf16>(s[mt][2 * np], q[mt][ks], kf[0], kf[1]);
          attention_ptx::mma_16x8x16<kBf16>(s[mt][2 * np + 1], q[mt][ks], kf[2], kf[3]);
        }
      }
  }

  // With a channel split, turns the partial scores into full ones through `exchange`. Every
  // warp of the group adds the partials in the same order, so all hold the same bits and keep
  // identical softmax statistics.
  __device__ __forceinline__ void sum_partial_scores(float* exchange, Scores& s) const {
    // One float4 per lane and 8-key tile: 16-byte accesses, consecutive across the warp.
    constexpr int kPerWarp = L::kExchangeFloatsPerWarp / 4;
    float4* const mine = reinterpret_cast<float4*>(exchange) + warp * kPerWarp;
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
        mine[(mt * kKeyTiles + nt) * 32 + lane] =
            make_float4(s[mt][nt][0], s[mt][nt][1], s[mt][nt][2], s[mt][nt][3]);
    attention_ptx::named_barrier(1 + group, 32 * L::kDimSplit);
    const float4* const first =
        reinterpret_cast<const float4*>(exchange) + group * L::kDimSplit * kPerWarp;
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt) {
        const int at = (mt * kKeyTiles + nt) * 32 + lane;
        float4 sum = first[at];
#pragma unroll
        for (int w = 1; w < L::kDimSplit; ++w) {
          const float4 part = first[w * kPerWarp + at];
          sum.x += part.x;
          sum.y += part.y;
          sum.z += part.z;
          sum.w += part.w;
        }
        s[mt][nt][0] = sum.x;
        s[mt][nt][1] = sum.y;
        s[mt][nt][2] = sum.z;
        s[mt][nt][3] = sum.w;
      }
  }

  // Removes keys from `valid` on (in the last tile).
  __device__ __forceinline__ void mask_tail(int valid, Scores& s) const {
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          if (nt * 8 + 2 * (lane % 4) + i % 2 >= valid) s[mt][nt][i] = -__int_as_float(0x7f800000);
  }

  // Online softmax step in base 2: scores become weights 2^(s·scale - max·scale), the running
  // sums and the output rescale to the new maxima. A row's scores are spread over the 4 lanes
  // of a quad. With kPartial, 8-key tiles wholly from `valid` on get weight zero without the
  // exponential (masked keys elsewhere are -inf, whose exponential is zero).
  template <bool kPartial>
  __device__ __forceinline__ void softmax(float scale, int valid, Scores& s) {
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float m = row_max[mt][r];
#pragma unroll
        for (int nt = 0; nt < kKeyTiles; ++nt)
          m = fmaxf(m, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
        const float rescale = attention_ptx::exp2_approx((row_max[mt][r] - m) * scale);
        row_max[mt][r] = m;
        const float shift = m * scale;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
          for (int i = 2 * r; i < 2 * r + 2; ++i) {
            s[mt][nt][i] = kPartial && nt * 8 >= valid
                               ? 0.0f
                               : attention_ptx::exp2_approx(fmaf(s[mt][nt][i], scale, -shift));
            sum += s[mt][nt][i];
          }
        row_sum[mt][r] = row_sum[mt][r] * rescale + sum;
#pragma unroll
        for (int nt = 0; nt < kOutTiles; ++nt) {
          o[mt][nt][2 * r] *= rescale;
          o[mt][nt][2 * r + 1] *= rescale;
        }
      }
  }

  // o += weights · values; the accumulators of two key tiles are the A fragment of one k-step.
  template <bool kPartial>
  __device__ __forceinline__ void accumulate(const Scores& s, int valid, const uint16_t* values) {
    using attention_ptx::mma_16x8x16;
    using attention_ptx::pack_pair;
#pragma unroll
    for (int kk = 0; kk < kKeyTiles / 2; ++kk) {
      if (kPartial && kk * 16 >= valid) continue;
      uint32_t pf[kRowTiles][4];
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt) {
        pf[mt][0] = pack_pair<kBf16>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pf[mt][1] = pack_pair<kBf16>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pf[mt][2] = pack_pair<kBf16>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pf[mt][3] = pack_pair<kBf16>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
      const uint16_t* const rows = values + (kk * 16 + lane % 8 + (lane / 8 % 2) * 8) * kStride;
#pragma unroll
      for (int np = 0; np < kOutTiles / 2; ++np) {
        uint32_t vf[4];
        const int col = slice_col + np * 16 + (lane / 16) * 8;
        attention_ptx::load_matrix_x4_transposed(vf, attention_ptx::shared_address(rows + col));
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          mma_16x8x16<kBf16>(o[mt][2 * np], pf[mt], vf[0], vf[1]);
          mma_16x8x16<kBf16>(o[mt][2 * np + 1], pf[mt], vf[2], vf[3]);
        }
      }
      if constexpr (kOutTiles % 2 == 1) {
        uint32_t vf[2];
        const int col = slice_col + (kOutTiles - 1) * 8;
        attention_ptx::load_matrix_x2_transposed(vf, attention_ptx::shared_address(rows + col));
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt)
          mma_16x8x16<kBf16>(o[mt][kOutTiles - 1], pf[mt], vf[0], vf[1]);
      }
    }
  }

  // One tile of keys and values (keys, then values kKeys rows further).
  template <bool kPartial>
  __device__ __forceinline__ void step(const uint16_t* tile, int valid, float scale,
                                       float* exchange) {
    Scores s;
    score<kPartial>(tile, valid, s);
    if constexpr (L::kDimSplit > 1) sum_partial_scores(exchange, s);
    if (kPartial) mask_tail(valid, s);
    softmax<kPartial>(scale, valid, s);
    accumulate<kPartial>(s, valid, tile + L::kKeys * kStride);
  }

  // Normalizes and rounds the output, stages the warp's rows of its slice in `staging` so that
  // the global stores are 16-byte pieces of consecutive channels, and stores rows below q_len.
  __device__ __forceinline__ void store(uint16_t* staging, uint16_t* out, int64_t row_stride,
                                        int q0, int q_len) const {
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float sum = row_sum[mt][r];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float inv = 1.0f / sum;
        const int row = warp_row + mt * 16 + lane / 4 + 8 * r;
#pragma unroll
        for (int nt = 0; nt < kOutTiles; ++nt) {
          const int col = slice_col + nt * 8 + 2 * (lane % 4);
          *reinterpret_cast<uint32_t*>(staging + row * kStride + col) =
              attention_ptx::pack_pair<kBf16>(o[mt][nt][2 * r] * inv, o[mt][nt][2 * r + 1] * inv);
        }
      }
    __syncwarp();
    constexpr int kPieces = L::kSliceDim / 8;
#pragma unroll
    for (int c = lane; c < L::kWarpRows * kPieces; c += 32) {
      const int r = c / kPieces, piece = c % kPieces;
      const int row = q0 + warp_row + r;
      if (row < q_len)
        *reinterpret_cast<uint4*>(out + row * row_stride + slice_col + piece * 8) =
            *reinterpret_cast<const uint4*>(staging + (warp_row + r) * kStride + slice_col +
                                            piece * 8);
    }
  }
};

// Launched with 32·w threads, w a power-of-two fraction of kWarps that keeps whole row groups;
// the block owns w / kDimSplit · kWarpRows query rows. Dynamic shared memory: L::kSharedBytes.
template <bool kBf16, int kHeadDim, int kRowTiles>
__global__ void __launch_bounds__(attention_tiling::Layout<kHeadDim, kRowTiles>::kMaxThreads,
                                  attention_tiling::Layout<kHeadDim, kRowTiles>::kMinBlocks)
    flash_attention(const Params p) {
  using L = attention_tiling::Layout<kHeadDim, kRowTiles>;
  using Warp = WarpAttention<kBf16, kHeadDim, kRowTiles>;
  constexpr int kStages = L::kStages, kKeys = L::kKeys;

  extern __shared__ uint4 shared_raw[];
  uint16_t* const area = reinterpret_cast<uint16_t*>(shared_raw);
  float* const exchange = reinterpret_cast<float*>(area + L::kAreaElems);
  const auto stage = [&](int j) { return area + j % kStages * L::kStageElems; };

  const int block_rows = static_cast<int>(blockDim.x) / 32 / L::kDimSplit * L::kWarpRows;
  const int q0 = blockIdx.x * block_rows;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const uint16_t* const q = p.q + b * p.q_strides.batch + h * p.q_strides.head;
  const uint16_t* const k = p.k + b * p.k_strides.batch + h * p.k_strides.head;
  const uint16_t* const v = p.v + b * p.v_strides.batch + h * p.v_strides.head;
  uint16_t* const out = p.out + b * p.out_strides.batch + h * p.out_strides.head;
  const int tiles = (p.kv_len + kKeys - 1) / kKeys;

  // One commit group per tile index, empty past the last tile, so that "tile j has arrived" is
  // always "at most kStages - 2 younger groups pending".
  const auto copy_tile_async = [&](int j) {
    if (j < tiles) {
      const uint32_t at = attention_ptx::shared_address(stage(j));
      copy_rows_async<kHeadDim, L::kRowStride>(at, k, p.k_strides.row, j * kKeys, kKeys, p.kv_len);
      copy_rows_async<kHeadDim, L::kRowStride>(at + 2 * kKeys * L::kRowStride, v, p.v_strides.row,
                                               j * kKeys, kKeys, p.kv_len);
    }
    attention_ptx::commit_async_copies();
  };

  // The query tile and the stages it does not overlay arrive first; the other stages fill once
  // the queries are in registers.
  zero_padding<kHeadDim, L>(area);
  copy_rows_async<kHeadDim, L::kRowStride>(
      attention_ptx::shared_address(area + L::kQueryStage * L::kStageElems), q, p.q_strides.row, q0,
      block_rows, p.q_len);
  for (int j = 0; j < L::kQueryStage; ++j) copy_tile_async(j);
  attention_ptx::commit_async_copies();
  attention_ptx::wait_async_copies<0>();
  __syncthreads();

  Warp warp(threadIdx.x);
  warp.load_queries(area + L::kQueryStage * L::kStageElems);
  __syncthreads();  // the query tile's stages become free
  for (int j = L::kQueryStage; j < kStages - 1; ++j) copy_tile_async(j);

  const int full_tiles = p.kv_len / kKeys;
  for (int j = 0; j < full_tiles; ++j) {
    attention_ptx::wait_async_copies<kStages - 2>();
    __syncthreads();  // tile j is in; every warp is done with tile j - 1, whose stage refills
    copy_tile_async(j + kStages - 1);
    warp.template step<false>(stage(j), kKeys, p.scale_log2, exchange);
  }
  if (full_tiles < tiles) {
    attention_ptx::wait_async_copies<kStages - 2>();
    __syncthreads();
    warp.template step<true>(stage(full_tiles), p.kv_len - full_tiles * kKeys, p.scale_log2,
                             exchange);
  }

  __syncthreads();  // other warps may still read the last stage
  warp.store(area, out, p.out_strides.row, q0, p.q_len);
}

}  // namespace ebb::attention_kernel
