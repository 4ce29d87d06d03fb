#include "backend/cpu/cpu_backend.h"

#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/f32_weights.h"
#include "backend/cpu/vector_kernels.h"

namespace ebb {
namespace {

bool is_f32(const Tensor& t) {
  return t.dtype() == DType::F32;
}
// Weights, biases and affine parameters are converted to F32 where they are not.
bool is_none_or_readable(const Tensor& t) {
  return !t.defined() || cpu::reads_weight_dtype(t.dtype());
}

}  // namespace

CpuBackend::CpuBackend(int threads, uint64_t budget) : Backend(make_host_memory()), pool_(threads) {
  arena().set_budget(budget);
}

const char* CpuBackend::kernels() const {
  return cpu::vector_kernels().name;
}

void CpuBackend::copy_from_host(const Tensor& dst, const void* src) {
  std::memcpy(dst.mutable_bytes(), src, dst.nbytes());
}

void CpuBackend::copy_to_host(const Tensor& src, void* dst) {
  std::memcpy(dst, src.bytes(), src.nbytes());
}

void CpuBackend::linear_into(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out) {
  if (!is_f32(x) || !is_none_or_readable(w) || !is_none_or_readable(b))
    fail_unsupported("linear", {{"x", x}, {"w", w}, {"b", b}});
  cpu::linear({pool_, arena()}, x, w, b, out);
}

void CpuBackend::conv2d_into(const Tensor& x, const Tensor& w, const Tensor& b,
                             const Conv2dGeometry& g, const Tensor& out) {
  if (!is_f32(x) || !is_none_or_readable(w) || !is_none_or_readable(b))
    fail_unsupported("conv2d", {{"x", x}, {"w", w}, {"b", b}});
  cpu::conv2d({pool_, arena()}, x, w, b, g, out);
}

void CpuBackend::group_norm_into(const Tensor& x, int64_t groups, const Tensor& gamma,
                                 const Tensor& beta, float eps, const Tensor& out) {
  if (!is_f32(x) || !is_none_or_readable(gamma) || !is_none_or_readable(beta))
    fail_unsupported("group_norm", {{"x", x}, {"gamma", gamma}, {"beta", beta}});
  cpu::group_norm({pool_, arena()}, x, groups, gamma, beta, eps, out);
}

void CpuBackend::layer_norm_into(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 float eps, const Tensor& out) {
  if (!is_f32(x) || !is_none_or_readable(gamma) || !is_none_or_readable(beta))
    fail_unsupported("layer_norm", {{"x", x}, {"gamma", gamma}, {"beta", beta}});
  cpu::layer_norm({pool_, arena()}, x, gamma, beta, eps, out);
}

void CpuBackend::rms_norm_into(const Tensor& x, const Tensor& gamma, float eps, const Tensor& out) {
  if (!is_f32(x) || !is_none_or_readable(gamma))
    fail_unsupported("rms_norm", {{"x", x}, {"gamma", gamma}});
  cpu::rms_norm({pool_, arena()}, x, gamma, eps, out);
}

void CpuBackend::binary_into(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (!is_f32(a) || !is_f32(b))
    fail_unsupported(op == BinaryOp::Add ? "add" : "mul", {{"a", a}, {"b", b}});
  cpu::binary({pool_, arena()}, op, a, b, out);
}

void CpuBackend::copy_into(const Tensor& src, const Tensor& dst) {
  cpu::copy({pool_, arena()}, src, dst);
}

void CpuBackend::upsample_nearest2x_into(const Tensor& x, const Tensor& out) {
  cpu::upsample_nearest2x({pool_, arena()}, x, out);
}

void CpuBackend::activation_into(Activation a, const Tensor& x, const Tensor& out) {
  if (!is_f32(x)) fail_unsupported(a == Activation::Silu ? "silu" : "gelu", {{"x", x}});
  cpu::activation({pool_, arena()}, a, x, out);
}

void CpuBackend::geglu_into(const Tensor& x, GeluApproximation approximation, const Tensor& out) {
  if (!is_f32(x)) fail_unsupported("geglu", {{"x", x}});
  cpu::geglu({pool_, arena()}, x, approximation, out);
}

void CpuBackend::softmax_into(const Tensor& x, const Tensor& out) {
  if (!is_f32(x)) fail_unsupported("softmax", {{"x", x}});
  cpu::softmax({pool_, arena()}, x, out);
}

void CpuBackend::attention_into(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                                const Tensor& mask, std::optional<float> scale, const Tensor& out) {
  if (!is_f32(q) || !is_f32(k) || !is_f32(v) || (mask.defined() && !is_f32(mask)))
    fail_unsupported("attention", {{"q", q}, {"k", k}, {"v", v}, {"mask", mask}});
  cpu::attention({pool_, arena()}, q, k, v, heads, mask, scale, out);
}

void CpuBackend::rope_into(const Tensor& x, int64_t heads, const Tensor& cos, const Tensor& sin,
                           RopeLayout layout, const Tensor& out) {
  if (!is_f32(x) || !is_f32(cos) || !is_f32(sin))
    fail_unsupported("rope", {{"x", x}, {"cos", cos}, {"sin", sin}});
  cpu::rope({pool_, arena()}, x, heads, cos, sin, layout, out);
}

void CpuBackend::rope_tables_into(const Tensor& ids, const std::vector<int64_t>& axes_dim,
                                  double theta, const Tensor& cos, const Tensor& sin) {
  if (!is_f32(ids)) fail_unsupported("rope_tables", {{"ids", ids}});
  cpu::rope_tables(ids, axes_dim, theta, cos, sin);
}

void CpuBackend::timestep_embedding_into(const Tensor& t, const TimestepEmbeddingParams& params,
                                         const Tensor& out) {
  if (!is_f32(t)) fail_unsupported("timestep_embedding", {{"t", t}});
  cpu::timestep_embedding(t, params, out);
}

}  // namespace ebb
