#pragma once
// The flash-attention kernel (FlashAttention-2 scheme on mma.sync): each warp keeps its query
// rows in registers as mma fragments, key and value tiles stream through shared memory in two
// stages (the next tile's asynchronous copy overlaps the current tile's products), and the
// softmax runs online in registers in base 2. Tiling per head dimension: attention_tiling.cuh.
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

// Starts copying rows [row0, row0 + kRows) of a matrix of `len` rows of kHeadDim channels into
// shared memory at `dst`, rows L::kRowStride elements apart; rows from `len` on become zeros.
template <int kHeadDim, int kRows>
__device__ __forceinline__ void copy_rows_async(uint32_t dst, const uint16_t* src, int64_t stride,
                                                int row0, int len) {
  using L = attention_tiling::Layout<kHeadDim>;
  constexpr int kPieces = kHeadDim / 8;
  constexpr int kTotal = kRows * kPieces;
#pragma unroll
  for (int i = 0; i < (kTotal + L::kThreads - 1) / L::kThreads; ++i) {
    const int c = i * L::kThreads + static_cast<int>(threadIdx.x);
    if (kTotal % L::kThreads != 0 && c >= kTotal) break;
    const int r = c / kPieces, piece = c % kPieces;
    const bool valid = row0 + r < len;
    const uint16_t* from = src + (valid ? row0 + r : 0) * stride + piece * 8;
    attention_ptx::copy_16_async(dst + 2 * (r * L::kRowStride + piece * 8), from, valid);
  }
}

// Zeroes channels kHeadDim .. kPaddedDim of kRows rows at `rows`, which the async copies never
// write, so that padded channels add nothing to the scores.
template <int kHeadDim, int kRows>
__device__ __forceinline__ void zero_padding(uint16_t* rows) {
  using L = attention_tiling::Layout<kHeadDim>;
  constexpr int kPieces = (L::kPaddedDim - kHeadDim) / 8;
  if constexpr (kPieces > 0) {
    for (int c = threadIdx.x; c < kRows * kPieces; c += L::kThreads) {
      const int r = c / kPieces, piece = c % kPieces;
      *reinterpret_cast<uint4*>(rows + r * L::kRowStride + kHeadDim + piece * 8) =
          make_uint4(0, 0, 0, 0);
    }
  }
}

// One warp's share of a block: where its rows and channel slice are, its query fragments, its
// output accumulators and the softmax statistics of its rows. Member arrays are indexed only
// with unrolled-loop constants, so they stay in registers.
template <bool kBf16, int kHeadDim>
struct WarpAttention {
  using L = attention_tiling::Layout<kHeadDim>;
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

  // Scores of the warp's rows against a tile of keys, over the warp's channel slice.
  __device__ __forceinline__ void score(const uint16_t* keys, Scores& s) const {
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
    constexpr int kPerWarp = L::kExchangeFloatsPerWarp;
    float* const mine = exchange + warp * kPerWarp;
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          mine[((mt * kKeyTiles + nt) * 4 + i) * 32 + lane] = s[mt][nt][i];
    attention_ptx::named_barrier(1 + group, 32 * L::kDimSplit);
    const float* const first = exchange + group * L::kDimSplit * kPerWarp;
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int at = ((mt * kKeyTiles + nt) * 4 + i) * 32 + lane;
          float sum = first[at];
#pragma unroll
          for (int w = 1; w < L::kDimSplit; ++w) sum += first[w * kPerWarp + at];
          s[mt][nt][i] = sum;
        }
  }

  // Removes keys from `kv_len` on (in the last tile, which starts at key0).
  __device__ __forceinline__ void mask_tail(int key0, int kv_len, Scores& s) const {
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          if (key0 + nt * 8 + 2 * (lane % 4) + i % 2 >= kv_len)
            s[mt][nt][i] = -__int_as_float(0x7f800000);
  }

  // Online softmax step in base 2: scores become weights 2^(s·scale - max·scale), the running
  // sums and the output rescale to the new maxima. A row's scores are spread over the 4 lanes
  // of a quad.
  __device__ __forceinline__ void softmax(float scale, Scores& s) {
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
            s[mt][nt][i] = attention_ptx::exp2_approx(fmaf(s[mt][nt][i], scale, -shift));
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
  __device__ __forceinline__ void accumulate(const Scores& s, const uint16_t* values) {
    using attention_ptx::mma_16x8x16;
    using attention_ptx::pack_pair;
#pragma unroll
    for (int kk = 0; kk < kKeyTiles / 2; ++kk) {
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

template <bool kBf16, int kHeadDim>
__global__ void __launch_bounds__(attention_tiling::Layout<kHeadDim>::kThreads,
                                  attention_tiling::Layout<kHeadDim>::kMinBlocks)
    flash_attention(const Params p) {
  using L = attention_tiling::Layout<kHeadDim>;
  using Warp = WarpAttention<kBf16, kHeadDim>;

  // Shared memory: stage 0 (keys, then values); region 1, which holds the query tile, then
  // stage 1, then the output on its way out; with a channel split, the partial scores.
  extern __shared__ uint4 shared_raw[];
  uint16_t* const stage0 = reinterpret_cast<uint16_t*>(shared_raw);
  uint16_t* const region1 = stage0 + L::kStageElems;
  float* const exchange = reinterpret_cast<float*>(region1 + L::kRegion1Elems);

  const int q0 = blockIdx.x * L::kBlockRows;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const uint16_t* const q = p.q + b * p.q_strides.batch + h * p.q_strides.head;
  const uint16_t* const k = p.k + b * p.k_strides.batch + h * p.k_strides.head;
  const uint16_t* const v = p.v + b * p.v_strides.batch + h * p.v_strides.head;
  uint16_t* const out = p.out + b * p.out_strides.batch + h * p.out_strides.head;

  auto copy_tile_async = [&](uint16_t* stage, int key0) {
    const uint32_t at = attention_ptx::shared_address(stage);
    copy_rows_async<kHeadDim, L::kKeys>(at, k, p.k_strides.row, key0, p.kv_len);
    copy_rows_async<kHeadDim, L::kKeys>(at + 2 * L::kKeys * L::kRowStride, v, p.v_strides.row, key0,
                                        p.kv_len);
    attention_ptx::commit_async_copies();
  };

  copy_rows_async<kHeadDim, L::kBlockRows>(attention_ptx::shared_address(region1), q,
                                           p.q_strides.row, q0, p.q_len);
  copy_tile_async(stage0, 0);
  zero_padding<kHeadDim, L::kBlockRows>(region1);
  zero_padding<kHeadDim, L::kKeys>(stage0);
  attention_ptx::wait_async_copies();
  __syncthreads();

  Warp warp(threadIdx.x);
  warp.load_queries(region1);
  __syncthreads();  // region 1 becomes stage 1
  zero_padding<kHeadDim, L::kKeys>(region1);

  const int tiles = (p.kv_len + L::kKeys - 1) / L::kKeys;
  for (int j = 0; j < tiles; ++j) {
    if (j > 0) {
      attention_ptx::wait_async_copies();
      __syncthreads();  // tile j is in; every warp is done with tile j - 1's stage
    }
    if (j + 1 < tiles) copy_tile_async(j % 2 == 0 ? region1 : stage0, (j + 1) * L::kKeys);
    const uint16_t* const keys = j % 2 == 0 ? stage0 : region1;

    typename Warp::Scores s;
    warp.score(keys, s);
    if constexpr (L::kDimSplit > 1) warp.sum_partial_scores(exchange, s);
    if ((j + 1) * L::kKeys > p.kv_len) warp.mask_tail(j * L::kKeys, p.kv_len, s);
    warp.softmax(p.scale_log2, s);
    warp.accumulate(s, keys + L::kKeys * L::kRowStride);
  }

  __syncthreads();  // other warps may still read region 1 as the last stage
  warp.store(region1, out, p.out_strides.row, q0, p.q_len);
}

}  // namespace ebb::attention_kernel
