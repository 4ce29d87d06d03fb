// Tensor-level wrappers of the raw-pointer kernels (activations, softmax, attention, RoPE,
// timestep embedding): strides and scratch come from the tensors and the arena.
#include <span>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels/attention.h"
#include "backend/cpu/kernels/softmax.h"

namespace ebb::cpu {
namespace {

// [B, L, H·D] with a dense last dimension, as [batch, head, token, channel].
Strides4 token_major(const Tensor& t, int64_t heads) {
  return {t.strides()[0], t.dim(2) / heads, t.strides()[1], 1};
}

}  // namespace

void activation(const Context& ctx, Activation a, const Tensor& x, const Tensor& out) {
  const float* xd = x.data<float>();
  float* y = out.mutable_data<float>();
  switch (a) {
    case Activation::Silu:
      silu(xd, y, x.numel(), ctx.pool);
      break;
    case Activation::Gelu:
      gelu(xd, y, x.numel(), GeluApproximation::None, ctx.pool);
      break;
    case Activation::GeluTanh:
      gelu(xd, y, x.numel(), GeluApproximation::Tanh, ctx.pool);
      break;
  }
}

void geglu(const Context& ctx, const Tensor& x, GeluApproximation approximation,
           const Tensor& out) {
  geglu(x.data<float>(), x.dim(1), out.mutable_data<float>(), out.dim(1), x.dim(0), out.dim(1),
        approximation, ctx.pool);
}

void softmax(const Context& ctx, const Tensor& x, const Tensor& out) {
  softmax_rows(x.data<float>(), x.dim(1), out.mutable_data<float>(), out.dim(1), x.dim(0), x.dim(1),
               ctx.pool);
}

void attention(const Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
               const Tensor& mask, std::optional<float> scale, const Tensor& out) {
  AttentionArgs args;
  args.shape = {q.dim(0), heads, q.dim(1), k.dim(1), q.dim(2) / heads};
  args.q = q.data<float>();
  args.q_strides = token_major(q, heads);
  args.k = k.data<float>();
  args.k_strides = token_major(k, heads);
  args.v = v.data<float>();
  args.v_strides = token_major(v, heads);
  args.out = out.mutable_data<float>();
  args.out_strides = token_major(out, heads);
  if (mask.defined()) {
    const Strides& s = mask.strides();
    args.mask = mask.data<float>();
    args.mask_strides = {s[0], s[1], s[2], s[3]};
  }
  args.scale = scale;
  const auto scratch = ctx.scratch(attention_scratch_bytes(args.shape, ctx.threads()), "attention");
  ebb::cpu::attention(args, std::span(scratch->data(), scratch->bytes()), ctx.pool);
}

void rope(const Context& ctx, const Tensor& x, int64_t heads, const Tensor& cos, const Tensor& sin,
          RopeLayout layout, const Tensor& out) {
  const RopeShape shape{x.dim(0), heads, x.dim(1), x.dim(2) / heads};
  apply_rope(x.data<float>(), token_major(x, heads), out.mutable_data<float>(),
             token_major(out, heads), shape, cos.data<float>(), sin.data<float>(), layout,
             ctx.pool);
}

void rope_tables(const Tensor& ids, const std::vector<int64_t>& axes_dim, double theta,
                 const Tensor& cos, const Tensor& sin) {
  rope_tables(ids.data<float>(), ids.dim(0), axes_dim, theta, cos.mutable_data<float>(),
              sin.mutable_data<float>());
}

void timestep_embedding(const Tensor& t, const TimestepEmbeddingParams& params, const Tensor& out) {
  timestep_embedding(t.data<float>(), t.dim(0), out.dim(1), params, out.mutable_data<float>());
}

}  // namespace ebb::cpu
