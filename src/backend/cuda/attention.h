#pragma once
// Scaled-dot-product attention on the GPU for f16 and bf16 tensors, flash style (the CUDA twin
// of backend/cpu/kernels/attention.h):
//
//   out[b,h,i,:] = Σ_j softmax_j(scale · q[b,h,i,:]·k[b,h,j,:]) · v[b,h,j,:]
//
// Products run on the tensor cores with f32 accumulation; the softmax statistics (running
// maximum and sum per query row) are f32. Keys are visited in tiles and no Lq×Lkv score matrix
// is ever stored, so memory beyond the inputs and the output is nil. There is no additive mask:
// no GPU caller needs one yet. Results are bit-identical run to run on one device.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>

#include "backend/cpu/kernels/strides.h"
#include "tensor/dtype.h"

namespace ebb {

// Which of a head dimension's tilings runs (attention.cu, TilingsFor). Auto picks by problem
// size; tests and the bench force one to check and time each. Head dimensions with one tiling
// run it for every value.
enum class CudaAttentionTiling { Auto, Wide, Narrow };

struct CudaAttentionArgs {
  DType dtype = DType::F16;  // F16 or BF16, of q, k, v and out alike
  int64_t batch = 1;
  int64_t heads = 1;
  int64_t q_len = 0;
  int64_t kv_len = 0;
  int64_t head_dim = 0;  // of q, k and v alike; see cuda_attention_supports_head_dim
  // Device pointers and element strides indexed [batch, head, token, channel], as on the CPU:
  // cpu::bhld_strides and cpu::blhd_strides give the two usual layouts. Channels must be
  // contiguous (col stride 1), and every pointer and the other strides must keep 16-byte
  // alignment (pointers 16-byte aligned, strides multiples of 8 elements), because tiles move
  // in 16-byte pieces.
  const void* q = nullptr;
  cpu::Strides4 q_strides;
  const void* k = nullptr;
  cpu::Strides4 k_strides;
  const void* v = nullptr;
  cpu::Strides4 v_strides;
  // Must not overlap q, k or v, and its strides must not make two outputs share memory.
  void* out = nullptr;
  cpu::Strides4 out_strides;
  std::optional<float> scale;  // empty: 1/sqrt(head_dim); else positive and finite
  CudaAttentionTiling tiling = CudaAttentionTiling::Auto;
};

// The head dimensions the kernel is built for: those of the supported models (SD1.x 40/80/160,
// SD2.x and SDXL 64, Flux and SD3 128, the VAE's single head of 512).
bool cuda_attention_supports_head_dim(int64_t head_dim);

// Enqueues the attention on `stream`. ebb::Error, before anything is enqueued, for an
// unsupported dtype or head dimension, a bad shape, a null or misaligned pointer or stride, a
// non-positive scale, or a device without the shared memory the kernel needs; also when the
// launch fails. Errors during execution surface at the next synchronization. Nothing is done
// when batch, heads or q_len is 0; kv_len must be at least 1.
void cuda_attention(const CudaAttentionArgs& args, cudaStream_t stream);

}  // namespace ebb
