#pragma once
// Which kernel computes an unmasked f16/bf16 attention on the GPU: Ebb's own flash kernel
// (attention.h) or cuDNN's fused SDPA (cudnn_attention.h). A pure function of the problem's
// shape and the user's choice, never of a timing taken at run time, so the same shape always
// takes the same path on one device and set of libraries (outputs stay bit-identical across
// memory plans). Header-only and free of CUDA so it is unit-tested without a GPU.
#include <cstdint>
#include <optional>
#include <string_view>

namespace ebb {

// --attention: auto (cuDNN where it loads, supports the shape and the measured rule below says
// it is faster), ebb (always Ebb's kernel), cudnn (cuDNN wherever it supports the shape).
enum class AttentionKernelChoice { Auto, Ebb, Cudnn };

inline std::optional<AttentionKernelChoice> parse_attention_kernel_choice(std::string_view s) {
  if (s == "auto") return AttentionKernelChoice::Auto;
  if (s == "ebb") return AttentionKernelChoice::Ebb;
  if (s == "cudnn") return AttentionKernelChoice::Cudnn;
  return std::nullopt;
}

struct AttentionProblem {
  int64_t batch = 1, heads = 1, q_len = 0, kv_len = 0, head_dim = 0;
};

// cuDNN's f16/bf16 SDPA on Hopper and older takes head dimensions that are multiples of 8 up
// to 256 (the frontend's sdpa_support_surface.h); the VAE's single head of 512 stays Ebb's.
inline bool cudnn_attention_supports(const AttentionProblem& p) {
  return p.head_dim > 0 && p.head_dim % 8 == 0 && p.head_dim <= 256 && p.q_len > 0 && p.kv_len > 0;
}

// Where cuDNN beat Ebb's kernel on the H100 (docs/benchmarks.md, "CUDA attention"): at 1024
// keys and more (self-attention from 1024 tokens on; 1.2x at head dim 40, 1.9x at 128). With
// 77, 154 or 256 keys (cross-attention, SD1's 256-token self-attention at head dim 160) Ebb's
// kernel was as fast or faster, bar SDXL's 4096x77 (cuDNN 21% faster there, 3 us a call).
inline bool cudnn_attention_faster(const AttentionProblem& p) {
  return cudnn_attention_supports(p) && p.kv_len >= 1024;
}

inline bool wants_cudnn_attention(AttentionKernelChoice choice, const AttentionProblem& p) {
  switch (choice) {
    case AttentionKernelChoice::Ebb:
      return false;
    case AttentionKernelChoice::Cudnn:
      return cudnn_attention_supports(p);
    case AttentionKernelChoice::Auto:
      return cudnn_attention_faster(p);
  }
  return false;
}

}  // namespace ebb
