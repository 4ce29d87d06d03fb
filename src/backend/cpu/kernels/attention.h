#pragma once
// Scaled-dot-product attention on f32, flash style: keys are visited in tiles and the softmax
// is kept online (running max and sum per query row), so memory stays O(L·D): no Lq×Lkv score
// matrix ever exists. Each thread works on a block of query rows with a fixed-size scratch
// area the caller provides (the backend's arena), sized by attention_scratch_bytes().
//
//   out[b,h,i,:] = Σ_j softmax_j(scale · q[b,h,i,:]·k[b,h,j,:] + mask[b,h,i,j]) · v[b,h,j,:]
//
// A query row whose keys are all masked (every mask value -inf) produces zeros, not the NaNs
// torch returns. Results are bit-identical run to run, whatever the thread count and the
// alignment of the buffers, for a given instruction set.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "backend/cpu/kernels/isa.h"
#include "backend/cpu/kernels/strides.h"

namespace ebb {
class ThreadPool;
}

namespace ebb::cpu {

struct AttentionShape {
  int64_t batch = 1;
  int64_t heads = 1;
  int64_t q_len = 0;
  int64_t kv_len = 0;
  int64_t head_dim = 0;  // of q, k and v alike
};

struct AttentionArgs {
  AttentionShape shape;
  // Element strides indexed [batch, head, token, channel].
  const float* q = nullptr;
  Strides4 q_strides;
  const float* k = nullptr;
  Strides4 k_strides;
  const float* v = nullptr;
  Strides4 v_strides;
  float* out = nullptr;  // must not overlap q, k, v or mask
  Strides4 out_strides;
  // Optional additive mask indexed [batch, head, query, key]; zero strides broadcast, e.g.
  // {0, 0, kv_len, 1} for one [Lq, Lkv] mask, {Lq·Lkv, 0, Lkv, 1} for [B, 1, Lq, Lkv].
  // -inf removes a key.
  const float* mask = nullptr;
  Strides4 mask_strides;
  std::optional<float> scale;  // empty: 1/sqrt(head_dim)
};

// Scratch bytes attention() needs for `shape` on a pool of `threads` threads.
size_t attention_scratch_bytes(const AttentionShape& shape, int threads);

// Throws ebb::Error on a bad shape, a missing pointer, or scratch smaller than
// attention_scratch_bytes(args.shape, pool.size()).
void attention(const AttentionArgs& args, std::span<std::byte> scratch, ThreadPool& pool,
               Isa isa = detected_isa());

}  // namespace ebb::cpu
