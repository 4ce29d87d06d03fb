#pragma once
// The flash-attention kernel (FlashAttention-2 scheme on mma.sync): each warp keeps its query
// rows in registers as mma fragments, key and value tiles stream through shared memory in two
// stages (the next tile's asynchronous copy overlaps the current tile's products), and the
// softmax runs online in registers in base 2. How the work is cut: attention_tiling.cuh.
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

// Starts copying rows [row0, row0 + kRows) of a matrix of `len` rows of L::kHeadDim channels
// into the shared tile at `dst` (placed by L::offset); rows from `len` on become zeros.
template <class L, int kRows>
__device__ __forceinline__ void copy_rows_async(uint32_t dst, const uint16_t* src, int64_t stride,
                                                int row0, int len) {
  constexpr int kPieces = L::kHeadDim / 8;
  constexpr int kTotal = kRows * kPieces;
#pragma unroll
  for (int i = 0; i < (kTotal + L::kThreads - 1) / L::kThreads; ++i) {
    const int c = i * L::kThreads + static_cast<int>(threadIdx.x);
    if (kTotal % L::kThreads != 0 && c >= kTotal) break;
    const int r = c / kPieces, piece = c % kPieces;
    const bool valid = row0 + r < len;
    const uint16_t* from = src + (valid ? row0 + r : 0) * stride + piece * 8;
    attention_ptx::copy_16_async(dst + 2 * L::offset(r, piece * 8), from, valid);
  }
}

// One warp's share of a block: where its rows and channel slice are, its query fragments, its
// output accumulators and the softmax statistics of its rows. Member arrays are indexed only
// with unrolled-loop constants, so they stay in registers.
template <bool kBf16, class T>
struct WarpAttention {
  using L = attention_tiling::Layout<T>;
  static constexpr int kRowTiles = L::kRowTiles, kKeyTiles = L::kKeyTiles;
  static constexpr int kOutTiles = L::kOutTiles, kSteps = L::kSliceSteps;
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
        const int col = slice_col + ks * 16;
        if (L::kHalfStep && ks == kSteps - 1) {
          uint32_t half[2];
          attention_ptx::load_matrix_x2(half,
                                        attention_ptx::shared_address(tile + L::offset(row, col)));
          q[mt][ks][0] = half[0];
          q[mt][ks][1] = half[1];
        } else {
          attention_ptx::load_matrix_x4(
              q[mt][ks],
              attention_ptx::shared_address(tile + L::offset(row, col + (lane / 16) * 8)));
        }
      }
  }

  // Scores of the warp's rows against a tile of keys, over the warp's channel slice.
  __device__ __forceinline__ void score(const uint16_t* keys, Scores& s) const {
    clear(s);
    score_steps<0, kSteps>(keys, s);
  }

  __device__ __forceinline__ static void clear(Scores& s) {
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) s[mt][nt][i] = 0.0f;
  }

  // Adds k-steps kFirst .. kLast - 1 (16 channels each, the half step 8) of the scores.
  template <int kFirst, int kLast>
  __device__ __forceinline__ void score_steps(const uint16_t* keys, Scores& s) const {
#pragma unroll
    for (int ks = kFirst; ks < kLast; ++ks) {
      if (L::kHalfStep && ks == kSteps - 1) {
        score_half_step(keys, s);
        continue;
      }
      uint32_t qf[kRowTiles][4];
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
        for (int i = 0; i < 4; ++i) qf[mt][i] = q[mt][ks][i];
#pragma unroll
      for (int np = 0; np < kKeyTiles / 2; ++np) {
        uint32_t kf[4];
        const int key = np * 16 + lane % 8 + (lane / 16) * 8;
        const int col = slice_col + ks * 16 + (lane / 8 % 2) * 8;
        attention_ptx::load_matrix_x4(kf,
                                      attention_ptx::shared_address(keys + L::offset(key, col)));
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          attention_ptx::mma_16x8x16<kBf16>(s[mt][2 * np], qf[mt], kf[0], kf[1]);
          attention_ptx::mma_16x8x16<kBf16>(s[mt][2 * np + 1], qf[mt], kf[2], kf[3]);
        }
      }
    }
  }

  // The last 8 channels of the slice: lanes 8i..8i+7 address the keys of 8-key tile i of 4, so
  // one ldmatrix gives the B operands of four m16n8k8 products.
  __device__ __forceinline__ void score_half_step(const uint16_t* keys, Scores& s) const {
    constexpr int ks = kSteps - 1;
#pragma unroll
    for (int nq = 0; nq < kKeyTiles / 4; ++nq) {
      uint32_t kf[4];
      const int key = nq * 32 + lane;
      attention_ptx::load_matrix_x4(
          kf, attention_ptx::shared_address(keys + L::offset(key, slice_col + ks * 16)));
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          attention_ptx::mma_16x8x8<kBf16>(s[mt][4 * nq + i], q[mt][ks][0], q[mt][ks][1], kf[i]);
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
  // of a quad. In two halves (new maxima, then weights), so that products of the next tile can
  // be placed between them.
  __device__ __forceinline__ void softmax(float scale, Scores& s) {
    float rescale[kRowTiles][2];
    softmax_maxima(scale, s, rescale);
    softmax_weights(scale, s, rescale);
  }

  __device__ __forceinline__ void softmax_maxima(float scale, const Scores& s,
                                                 float (&rescale)[kRowTiles][2]) {
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
        rescale[mt][r] = attention_ptx::exp2_approx((row_max[mt][r] - m) * scale);
        row_max[mt][r] = m;
      }
  }

  __device__ __forceinline__ void softmax_weights(float scale, Scores& s,
                                                  const float (&rescale)[kRowTiles][2]) {
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float shift = row_max[mt][r] * scale;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
          for (int i = 2 * r; i < 2 * r + 2; ++i) {
            s[mt][nt][i] = attention_ptx::exp2_approx(fmaf(s[mt][nt][i], scale, -shift));
            sum += s[mt][nt][i];
          }
        row_sum[mt][r] = row_sum[mt][r] * rescale[mt][r] + sum;
#pragma unroll
        for (int nt = 0; nt < kOutTiles; ++nt) {
          o[mt][nt][2 * r] *= rescale[mt][r];
          o[mt][nt][2 * r + 1] *= rescale[mt][r];
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
      const int row = kk * 16 + lane % 8 + (lane / 8 % 2) * 8;
#pragma unroll
      for (int np = 0; np < kOutTiles / 2; ++np) {
        uint32_t vf[4];
        const int col = slice_col + np * 16 + (lane / 16) * 8;
        attention_ptx::load_matrix_x4_transposed(
            vf, attention_ptx::shared_address(values + L::offset(row, col)));
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          mma_16x8x16<kBf16>(o[mt][2 * np], pf[mt], vf[0], vf[1]);
          mma_16x8x16<kBf16>(o[mt][2 * np + 1], pf[mt], vf[2], vf[3]);
        }
      }
      if constexpr (kOutTiles % 2 == 1) {
        uint32_t vf[2];
        const int col = slice_col + (kOutTiles - 1) * 8;
        attention_ptx::load_matrix_x2_transposed(
            vf, attention_ptx::shared_address(values + L::offset(row, col)));
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
          *reinterpret_cast<uint32_t*>(staging + L::offset(row, col)) =
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
            *reinterpret_cast<const uint4*>(staging +
                                            L::offset(warp_row + r, slice_col + piece * 8));
    }
  }
};

template <bool kBf16, class T>
__global__ void __launch_bounds__(attention_tiling::Layout<T>::kThreads, T::kMinBlocks)
    flash_attention(const Params p) {
  using L = attention_tiling::Layout<T>;
  using Warp = WarpAttention<kBf16, T>;
  using attention_ptx::commit_async_copies;
  using attention_ptx::wait_async_copies;

  // Shared memory (attention_tiling::Layout): the stages, the query tile, the output on its way
  // out; with a channel split, the partial scores.
  extern __shared__ uint4 shared_raw[];
  uint16_t* const area = reinterpret_cast<uint16_t*>(shared_raw);
  const uint16_t* const queries = area + L::kQueryOffset;
  float* const exchange = reinterpret_cast<float*>(area + L::kAreaElems);

  const int q0 = blockIdx.x * L::kBlockRows;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const uint16_t* const q = p.q + b * p.q_strides.batch + h * p.q_strides.head;
  const uint16_t* const k = p.k + b * p.k_strides.batch + h * p.k_strides.head;
  const uint16_t* const v = p.v + b * p.v_strides.batch + h * p.v_strides.head;
  uint16_t* const out = p.out + b * p.out_strides.batch + h * p.out_strides.head;
  const int tiles = (p.kv_len + L::kKeys - 1) / L::kKeys;

  // Copies of key tile j or value tile j to `dst`, nothing past the last tile; the caller
  // still commits a (then empty) group so that every iteration waits for the same count.
  auto copy_keys_async = [&](uint16_t* dst, int j) {
    if (j < tiles)
      copy_rows_async<L, L::kKeys>(attention_ptx::shared_address(dst), k, p.k_strides.row,
                                   j * L::kKeys, p.kv_len);
  };
  auto copy_values_async = [&](uint16_t* dst, int j) {
    if (j < tiles)
      copy_rows_async<L, L::kKeys>(attention_ptx::shared_address(dst), v, p.v_strides.row,
                                   j * L::kKeys, p.kv_len);
  };
  auto mask_if_last = [&](int j, typename Warp::Scores& s, const Warp& warp) {
    if ((j + 1) * L::kKeys > p.kv_len) warp.mask_tail(j * L::kKeys, p.kv_len, s);
  };

  copy_rows_async<L, L::kBlockRows>(attention_ptx::shared_address(queries), q, p.q_strides.row, q0,
                                    p.q_len);
  Warp warp(threadIdx.x);
  if constexpr (L::kScoresAhead) {
    // Key tile j in area tile j % 2, value tile j in area tile 2 + j % 2.
    auto key_tile = [&](int j) { return area + j % 2 * L::kTileElems; };
    auto value_tile = [&](int j) { return area + (2 + j % 2) * L::kTileElems; };
    copy_keys_async(key_tile(0), 0);
    copy_keys_async(key_tile(1), 1);
    if constexpr (!L::kQueryOverlaysValues) copy_values_async(value_tile(0), 0);
    commit_async_copies();
    wait_async_copies<0>();
    __syncthreads();
    warp.load_queries(queries);
    if constexpr (L::kQueryOverlaysValues) {
      __syncthreads();
      copy_values_async(value_tile(0), 0);
      commit_async_copies();
    }

    typename Warp::Scores current, next;
    warp.score(key_tile(0), current);
    mask_if_last(0, current, warp);
    for (int j = 0; j + 1 < tiles; ++j) {
      wait_async_copies<0>();
      __syncthreads();  // values j and keys j + 1 are in; keys j and values j - 1 are spent
      copy_keys_async(key_tile(j), j + 2);
      copy_values_async(value_tile(j + 1), j + 1);
      commit_async_copies();
      // The halves of the next tile's products frame the softmax steps of this one, whose
      // arithmetic then has independent tensor-core work to overlap.
      constexpr int kHalf = Warp::kSteps / 2;
      float rescale[L::kRowTiles][2];
      Warp::clear(next);
      warp.template score_steps<0, kHalf>(key_tile(j + 1), next);
      warp.softmax_maxima(p.scale_log2, current, rescale);
      warp.template score_steps<kHalf, Warp::kSteps>(key_tile(j + 1), next);
      warp.softmax_weights(p.scale_log2, current, rescale);
      warp.accumulate(current, value_tile(j));
      mask_if_last(j + 1, next, warp);
#pragma unroll
      for (int mt = 0; mt < L::kRowTiles; ++mt)
#pragma unroll
        for (int nt = 0; nt < L::kKeyTiles; ++nt)
#pragma unroll
          for (int i = 0; i < 4; ++i) current[mt][nt][i] = next[mt][nt][i];
    }
    wait_async_copies<0>();
    __syncthreads();
    warp.softmax(p.scale_log2, current);
    warp.accumulate(current, value_tile(tiles - 1));
  } else {
    // Key and value tile j in stage j % kStages.
    auto stage = [&](int j) { return area + j % L::kStages * L::kStageElems; };
    auto copy_tile_async = [&](int j) {
      copy_keys_async(stage(j), j);
      copy_values_async(stage(j) + L::kTileElems, j);
    };
    for (int j = 0; j < L::kStages - 1; ++j) copy_tile_async(j);
    commit_async_copies();
    wait_async_copies<0>();
    __syncthreads();
    warp.load_queries(queries);  // the loop's first barrier keeps the last stage off them

    for (int j = 0; j < tiles; ++j) {
      wait_async_copies<L::kStages - 2>();
      __syncthreads();  // tile j is in; every warp is done with tile j - 1, whose stage refills
      copy_tile_async(j + L::kStages - 1);
      commit_async_copies();

      typename Warp::Scores s;
      warp.score(stage(j), s);
      if constexpr (L::kDimSplit > 1) warp.sum_partial_scores(exchange, s);
      mask_if_last(j, s, warp);
      warp.softmax(p.scale_log2, s);
      warp.accumulate(s, stage(j) + L::kTileElems);
    }
  }

  __syncthreads();  // other warps may still read the last values
  warp.store(area, out, p.out_strides.row, q0, p.q_len);
}

}  // namespace ebb::attention_kernel
