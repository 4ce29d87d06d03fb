#include "backend/backend.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "tensor/float_convert.h"

namespace ebb {
namespace {

std::string list_operands(std::initializer_list<Operand> operands) {
  std::string s;
  for (const Operand& o : operands) {
    if (!s.empty()) s += ", ";
    s += fmt::format("{} {}", o.name, o.tensor.describe());
  }
  return s;
}

// A parameter vector (bias, gamma, beta) is none or has exactly `n` elements in one dimension.
void check_vector(std::string_view op, const Operand& param, int64_t n, const Tensor& x) {
  const Tensor& t = param.tensor;
  if (t.defined() && (t.rank() != 1 || t.dim(0) != n))
    fail("{}: {} {} should be [{}] for input {}", op, param.name, t.describe(), n, x.describe());
}

void check_plain(std::string_view op, const Tensor& x) {
  if (dtype_info(x.dtype()).quantized)
    fail("{}: {} is block-quantized; layout ops move plain elements only", op, x.describe());
}

Shape broadcast_shape(std::string_view op, const Tensor& a, const Tensor& b) {
  const int rank = std::max(a.rank(), b.rank());
  Shape shape(rank);
  for (int i = 0; i < rank; ++i) {
    const int ia = i - (rank - a.rank()), ib = i - (rank - b.rank());
    const int64_t da = ia >= 0 ? a.shape()[ia] : 1, db = ib >= 0 ? b.shape()[ib] : 1;
    if (da != db && da != 1 && db != 1)
      fail("{}: shapes of {} and {} do not broadcast (dimension {}: {} vs {})", op, a.describe(),
           b.describe(), i, da, db);
    shape[i] = da == 1 ? db : da;
  }
  return shape;
}

}  // namespace

void Backend::fail_unsupported(std::string_view op, std::initializer_list<Operand> operands) const {
  fail("{} on {} does not support {}", op, device().name(), list_operands(operands));
}

void Backend::check_operands(std::string_view op, std::initializer_list<Operand> operands,
                             bool allow_strided) const {
  for (const Operand& o : operands) {
    if (!o.tensor.defined()) continue;
    if (o.tensor.device() != device())
      fail("{}: {} {} is on {} but this backend computes on {}", op, o.name, o.tensor.describe(),
           o.tensor.device().name(), device().name());
    if (!allow_strided && !o.tensor.is_contiguous())
      fail("{}: {} {} is a strided view; make it dense with contiguous() first", op, o.name,
           o.tensor.describe());
  }
}

Tensor Backend::output(const Shape& shape, DType dtype, std::string_view op) {
  return empty(shape, dtype, MemoryTag::Activations, op);
}

Tensor Backend::empty(const Shape& shape, std::optional<DType> dtype, MemoryTag tag,
                      std::string_view op) {
  const DType t = dtype.value_or(activation_dtype_);
  return Tensor(arena_.allocate(dense_bytes(t, shape, op), tag, op), 0, t, shape);
}

void Backend::set_activation_dtype(DType t) {
  if (!computes_in(t)) fail("{} cannot compute in {}", device().name(), dtype_name(t));
  activation_dtype_ = t;
}

void Backend::write(const Tensor& dst, const void* src, uint64_t bytes) {
  const OpScope scope(observer_, "write", {{"dst", dst}});
  check_operands("write", {{"dst", dst}}, false);
  if (bytes != dst.nbytes())
    fail("write: {} bytes given for {} of {} bytes", bytes, dst.describe(), dst.nbytes());
  dst.mutable_bytes();  // fails on read-only storage
  copy_from_host(dst, src);
}

void Backend::read(const Tensor& src, void* dst, uint64_t bytes) {
  const OpScope scope(observer_, "read", {{"src", src}});
  check_operands("read", {{"src", src}}, false);
  if (bytes != src.nbytes())
    fail("read: {} bytes asked of {} of {} bytes", bytes, src.describe(), src.nbytes());
  copy_to_host(src, dst);
}

void Backend::write_floats(const Tensor& dst, std::span<const float> values) {
  if (values.size() != static_cast<uint64_t>(dst.numel()))
    fail("write_floats: {} values given for {}", values.size(), dst.describe());
  switch (dst.dtype()) {
    case DType::F32:
      write(dst, values.data(), values.size_bytes());
      return;
    case DType::F16:
    case DType::BF16: {
      std::vector<uint16_t> bits(values.size());
      const bool half = dst.dtype() == DType::F16;
      for (size_t i = 0; i < values.size(); ++i)
        bits[i] = half ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
      write(dst, bits.data(), bits.size() * sizeof(uint16_t));
      return;
    }
    default:
      fail("write_floats: {} is not F32, F16 or BF16", dst.describe());
  }
}

void Backend::read_floats(const Tensor& src, std::span<float> values) {
  if (values.size() != static_cast<uint64_t>(src.numel()))
    fail("read_floats: {} values asked of {}", values.size(), src.describe());
  switch (src.dtype()) {
    case DType::F32:
      read(src, values.data(), values.size_bytes());
      return;
    case DType::F16:
    case DType::BF16: {
      std::vector<uint16_t> bits(values.size());
      read(src, bits.data(), bits.size() * sizeof(uint16_t));
      const bool half = src.dtype() == DType::F16;
      for (size_t i = 0; i < values.size(); ++i)
        values[i] = half ? f16_to_f32(bits[i]) : bf16_to_f32(bits[i]);
      return;
    }
    default:
      fail("read_floats: {} is not F32, F16 or BF16", src.describe());
  }
}

Tensor Backend::from_floats(const Shape& shape, std::span<const float> values,
                            std::string_view op) {
  Tensor t = empty(shape, activation_dtype_, MemoryTag::Activations, op);
  write_floats(t, values);
  return t;
}

Tensor Backend::import_from(Backend& source, const Tensor& t) {
  if (!t.defined() || (t.device() == device() && t.dtype() == activation_dtype_)) return t;
  return from_floats(t.shape(), source.to_floats(t), "import");
}

std::vector<float> Backend::to_floats(const Tensor& t) {
  const Tensor dense = t.is_contiguous() ? t : contiguous(t);
  std::vector<float> values(static_cast<size_t>(dense.numel()));
  read_floats(dense, values);
  return values;
}

Tensor Backend::linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const OpScope scope(observer_, "linear", {{"x", x}, {"w", weight}});
  const Tensor w = parameter(weight), b = parameter(bias);
  check_operands("linear", {{"x", x}, {"w", w}, {"b", b}}, false);
  if (x.rank() < 1 || w.rank() != 2 || x.dim(-1) != w.dim(1))
    fail("linear: x {} does not match weight w {} (expected x [..., {}])", x.describe(),
         w.describe(), w.rank() == 2 ? w.dim(1) : 0);
  check_vector("linear", {"b", b}, w.dim(0), x);
  Shape shape = x.shape();
  shape.back() = w.dim(0);
  Tensor out = output(shape, activation_dtype_, "linear");
  const int64_t rows = shape_numel(x.shape(), 0, x.rank() - 1);
  linear_into(x.reshape({rows, x.dim(-1)}), w, b, out.reshape({rows, w.dim(0)}));
  return out;
}

Tensor Backend::conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad) {
  return conv2d(x, w, b, Conv2dGeometry::uniform(stride, pad));
}

Tensor Backend::conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Conv2dGeometry& g) {
  const OpScope scope(observer_, "conv2d", {{"x", x}, {"w", weight}});
  const Tensor w = parameter(weight), b = parameter(bias);
  check_operands("conv2d", {{"x", x}, {"w", w}, {"b", b}}, false);
  if (x.rank() != 4 || w.rank() != 4 || x.dim(1) != w.dim(1))
    fail("conv2d: input x {} does not match weight w {} (expected x [N, {}, H, W])", x.describe(),
         w.describe(), w.rank() == 4 ? w.dim(1) : 0);
  check_vector("conv2d", {"b", b}, w.dim(0), x);
  if (g.stride < 1 || g.pad_top < 0 || g.pad_left < 0 || g.pad_bottom < 0 || g.pad_right < 0)
    fail("conv2d: stride {} and padding ({}, {}, {}, {}) for x {} must be positive", g.stride,
         g.pad_top, g.pad_left, g.pad_bottom, g.pad_right, x.describe());
  const int64_t h = x.dim(2) + g.pad_top + g.pad_bottom, wd = x.dim(3) + g.pad_left + g.pad_right;
  if (w.dim(2) < 1 || w.dim(3) < 1 || h < w.dim(2) || wd < w.dim(3))
    fail("conv2d: kernel of w {} does not fit padded input x {}", w.describe(), x.describe());
  const Shape shape{x.dim(0), w.dim(0), (h - w.dim(2)) / g.stride + 1,
                    (wd - w.dim(3)) / g.stride + 1};
  Tensor out = output(shape, activation_dtype_, "conv2d");
  conv2d_into(x, w, b, g, out);
  return out;
}

Tensor Backend::group_norm(const Tensor& x, int64_t groups, const Tensor& gamma_param,
                           const Tensor& beta_param, float eps) {
  const OpScope scope(observer_, "group_norm", {{"x", x}});
  const Tensor gamma = parameter(gamma_param), beta = parameter(beta_param);
  check_operands("group_norm", {{"x", x}, {"gamma", gamma}, {"beta", beta}}, false);
  if (x.rank() < 2 || groups < 1 || x.dim(1) % groups != 0)
    fail("group_norm: x {} cannot be split into {} channel groups", x.describe(), groups);
  check_vector("group_norm", {"gamma", gamma}, x.dim(1), x);
  check_vector("group_norm", {"beta", beta}, x.dim(1), x);
  Tensor out = output(x.shape(), activation_dtype_, "group_norm");
  const int64_t spatial = shape_numel(x.shape(), 2, x.rank());
  const Shape flat{x.dim(0), x.dim(1), spatial};
  group_norm_into(x.reshape(flat), groups, gamma, beta, eps, out.reshape(flat));
  return out;
}

Tensor Backend::layer_norm(const Tensor& x, const Tensor& gamma_param, const Tensor& beta_param,
                           float eps) {
  const OpScope scope(observer_, "layer_norm", {{"x", x}});
  const Tensor gamma = parameter(gamma_param), beta = parameter(beta_param);
  check_operands("layer_norm", {{"x", x}, {"gamma", gamma}, {"beta", beta}}, false);
  if (x.rank() < 1) fail("layer_norm: x {} has no dimension to normalise", x.describe());
  check_vector("layer_norm", {"gamma", gamma}, x.dim(-1), x);
  check_vector("layer_norm", {"beta", beta}, x.dim(-1), x);
  Tensor out = output(x.shape(), activation_dtype_, "layer_norm");
  const Shape flat{shape_numel(x.shape(), 0, x.rank() - 1), x.dim(-1)};
  layer_norm_into(x.reshape(flat), gamma, beta, eps, out.reshape(flat));
  return out;
}

Tensor Backend::rms_norm(const Tensor& x, const Tensor& gamma_param, float eps) {
  const OpScope scope(observer_, "rms_norm", {{"x", x}});
  const Tensor gamma = parameter(gamma_param);
  check_operands("rms_norm", {{"x", x}, {"gamma", gamma}}, false);
  if (x.rank() < 1) fail("rms_norm: x {} has no dimension to normalise", x.describe());
  check_vector("rms_norm", {"gamma", gamma}, x.dim(-1), x);
  Tensor out = output(x.shape(), activation_dtype_, "rms_norm");
  const Shape flat{shape_numel(x.shape(), 0, x.rank() - 1), x.dim(-1)};
  rms_norm_into(x.reshape(flat), gamma, eps, out.reshape(flat));
  return out;
}

Tensor Backend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = op == BinaryOp::Add ? "add" : "mul";
  if (!a.defined() || !b.defined()) fail("{}: an operand is none", name);
  const OpScope scope(observer_, name, {{"a", a}, {"b", b}});
  check_operands(name, {{"a", a}, {"b", b}}, true);
  const Shape shape = broadcast_shape(name, a, b);
  Tensor out = output(shape, activation_dtype_, name);
  binary_into(op, a.expand(shape), b.expand(shape), out);
  return out;
}

Tensor Backend::add(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Add, a, b);
}
Tensor Backend::mul(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Mul, a, b);
}

Tensor Backend::contiguous(const Tensor& x) {
  const OpScope scope(observer_, "contiguous", {{"x", x}});
  check_operands("contiguous", {{"x", x}}, true);
  check_plain("contiguous", x);
  Tensor out = output(x.shape(), x.dtype(), "contiguous");
  copy_into(x, out);
  return out;
}

Tensor Backend::permute(const Tensor& x, const std::vector<int>& dims) {
  const OpScope scope(observer_, "permute", {{"x", x}});
  check_operands("permute", {{"x", x}}, true);
  check_plain("permute", x);
  Tensor view = x.permuted(dims);
  Tensor out = output(view.shape(), x.dtype(), "permute");
  copy_into(view, out);
  return out;
}

Tensor Backend::concat(const std::vector<Tensor>& xs, int dim) {
  if (xs.empty()) fail("concat: no tensors given");
  const OpScope scope(observer_, "concat", {{"x0", xs.front()}});
  const Tensor& first = xs.front();
  const int d = normalize_dim(dim, first.rank(), "concat");
  Shape shape = first.shape();
  shape[d] = 0;
  for (const Tensor& x : xs) {
    check_operands("concat", {{"x", x}}, true);
    check_plain("concat", x);
    bool same = x.dtype() == first.dtype() && x.rank() == first.rank();
    for (int i = 0; same && i < x.rank(); ++i) same = i == d || x.dim(i) == first.dim(i);
    if (!same)
      fail("concat: {} and {} differ outside dimension {}", first.describe(), x.describe(), d);
    shape[d] += x.dim(d);
  }
  Tensor out = output(shape, first.dtype(), "concat");
  int64_t at = 0;
  for (const Tensor& x : xs) {
    copy_into(x, out.narrow(d, at, x.dim(d)));
    at += x.dim(d);
  }
  return out;
}

std::vector<Tensor> Backend::split(const Tensor& x, const std::vector<int64_t>& sizes, int dim) {
  const OpScope scope(observer_, "split", {{"x", x}});
  check_operands("split", {{"x", x}}, true);
  check_plain("split", x);
  const int d = normalize_dim(dim, x.rank(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) fail("split: negative size {} for {}", s, x.describe());
    total += s;
  }
  if (total != x.dim(d))
    fail("split: sizes [{}] add up to {}, not dimension {} of {}", fmt::join(sizes, ", "), total, d,
         x.describe());
  std::vector<Tensor> parts;
  int64_t at = 0;
  for (int64_t s : sizes) {
    Tensor view = x.narrow(d, at, s);
    Tensor part = output(view.shape(), x.dtype(), "split");
    copy_into(view, part);
    parts.push_back(std::move(part));
    at += s;
  }
  return parts;
}

Tensor Backend::upsample_nearest2x(const Tensor& x) {
  const OpScope scope(observer_, "upsample_nearest2x", {{"x", x}});
  check_operands("upsample_nearest2x", {{"x", x}}, false);
  check_plain("upsample_nearest2x", x);
  if (x.rank() != 4) fail("upsample_nearest2x: x {} is not [N, C, H, W]", x.describe());
  Tensor out =
      output({x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3)}, x.dtype(), "upsample_nearest2x");
  upsample_nearest2x_into(x, out);
  return out;
}

Tensor Backend::activation(Activation a, const Tensor& x, std::string_view name) {
  const OpScope scope(observer_, name, {{"x", x}});
  check_operands(name, {{"x", x}}, false);
  Tensor out = output(x.shape(), activation_dtype_, name);
  activation_into(a, x, out);
  return out;
}

Tensor Backend::silu(const Tensor& x) {
  return activation(Activation::Silu, x, "silu");
}

Tensor Backend::gelu(const Tensor& x, GeluApproximation approximation) {
  return approximation == GeluApproximation::Tanh ? activation(Activation::GeluTanh, x, "gelu")
                                                  : activation(Activation::Gelu, x, "gelu");
}

Tensor Backend::geglu(const Tensor& x, GeluApproximation approximation) {
  const OpScope scope(observer_, "geglu", {{"x", x}});
  check_operands("geglu", {{"x", x}}, false);
  if (x.rank() < 1 || x.dim(-1) % 2 != 0)
    fail("geglu: the last dimension of x {} is not hidden and gate halves", x.describe());
  Shape shape = x.shape();
  shape.back() /= 2;
  Tensor out = output(shape, activation_dtype_, "geglu");
  const int64_t rows = shape_numel(x.shape(), 0, x.rank() - 1);
  geglu_into(x.reshape({rows, x.dim(-1)}), approximation, out.reshape({rows, shape.back()}));
  return out;
}

Tensor Backend::softmax(const Tensor& x) {
  const OpScope scope(observer_, "softmax", {{"x", x}});
  check_operands("softmax", {{"x", x}}, false);
  if (x.rank() < 1) fail("softmax: x {} has no dimension to normalise", x.describe());
  Tensor out = output(x.shape(), activation_dtype_, "softmax");
  const Shape flat{shape_numel(x.shape(), 0, x.rank() - 1), x.dim(-1)};
  softmax_into(x.reshape(flat), out.reshape(flat));
  return out;
}

Tensor Backend::attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                          const Tensor& mask, std::optional<float> scale) {
  const OpScope scope(observer_, "attention", {{"q", q}, {"k", k}});
  check_operands("attention", {{"q", q}, {"k", k}, {"v", v}, {"mask", mask}}, true);
  const bool shapes_ok = q.rank() == 3 && k.rank() == 3 && v.rank() == 3 && heads > 0 &&
                         k.dim(0) == q.dim(0) && v.dim(0) == q.dim(0) && k.dim(1) == v.dim(1) &&
                         k.dim(2) == q.dim(2) && v.dim(2) == q.dim(2) && q.dim(2) % heads == 0;
  if (!shapes_ok)
    fail("attention: q {}, k {}, v {} are not [B, Lq, H·D], [B, Lkv, H·D] with {} heads",
         q.describe(), k.describe(), v.describe(), heads);
  for (const Operand& o : {Operand{"q", q}, Operand{"k", k}, Operand{"v", v}})
    if (o.tensor.dim(2) > 1 && o.tensor.strides()[2] != 1)
      fail("attention: the last dimension of {} {} is strided", o.name, o.tensor.describe());
  const Shape scores{q.dim(0), heads, q.dim(1), k.dim(1)};
  if (mask.defined()) {
    bool broadcasts = mask.rank() <= 4;
    for (int i = 1; broadcasts && i <= mask.rank(); ++i)
      broadcasts = mask.dim(-i) == 1 || mask.dim(-i) == scores[4 - i];
    if (!broadcasts)
      fail("attention: mask {} does not broadcast to the scores {}", mask.describe(),
           shape_str(scores));
  }
  Tensor out = output(q.shape(), activation_dtype_, "attention");
  attention_into(q, k, v, heads, mask.defined() ? mask.expand(scores) : Tensor{}, scale, out);
  return out;
}

Tensor Backend::rope(const Tensor& x, int64_t heads, const Tensor& cos, const Tensor& sin,
                     RopeLayout layout) {
  const OpScope scope(observer_, "rope", {{"x", x}});
  check_operands("rope", {{"x", x}, {"cos", cos}, {"sin", sin}}, false);
  const bool ok = x.rank() == 3 && heads > 0 && x.dim(2) % heads == 0 &&
                  (x.dim(2) / heads) % 2 == 0 && cos.rank() == 2 && cos.dim(0) == x.dim(1) &&
                  cos.dim(1) == x.dim(2) / heads / 2 && sin.shape() == cos.shape();
  if (!ok)
    fail("rope: x {} with {} heads of even size needs cos and sin [{}, D/2], not {} and {}",
         x.describe(), heads, x.rank() == 3 ? x.dim(1) : 0, cos.describe(), sin.describe());
  Tensor out = output(x.shape(), activation_dtype_, "rope");
  rope_into(x, heads, cos, sin, layout, out);
  return out;
}

std::pair<Tensor, Tensor> Backend::rope_tables(const Tensor& ids,
                                               const std::vector<int64_t>& axes_dim, double theta) {
  const OpScope scope(observer_, "rope_tables", {{"ids", ids}});
  check_operands("rope_tables", {{"ids", ids}}, false);
  if (ids.rank() != 2 || ids.dim(1) != int64_t(axes_dim.size()))
    fail("rope_tables: ids {} should be [L, {}] for axes [{}]", ids.describe(), axes_dim.size(),
         fmt::join(axes_dim, ", "));
  int64_t pairs = 0;
  for (int64_t d : axes_dim) {
    if (d <= 0 || d % 2 != 0)
      fail("rope_tables: axis dimension {} in [{}] is not positive and even", d,
           fmt::join(axes_dim, ", "));
    pairs += d / 2;
  }
  Tensor cos = output({ids.dim(0), pairs}, DType::F32, "rope_tables");
  Tensor sin = output({ids.dim(0), pairs}, DType::F32, "rope_tables");
  rope_tables_into(ids, axes_dim, theta, cos, sin);
  return {cos, sin};
}

Tensor Backend::timestep_embedding(const Tensor& t, int64_t dim,
                                   const TimestepEmbeddingParams& params) {
  const OpScope scope(observer_, "timestep_embedding", {{"t", t}});
  check_operands("timestep_embedding", {{"t", t}}, false);
  if (t.rank() != 1 || dim < 2)
    fail("timestep_embedding: t {} should be [N] and dim {} at least 2", t.describe(), dim);
  Tensor out = output({t.dim(0), dim}, activation_dtype_, "timestep_embedding");
  timestep_embedding_into(t, params, out);
  return out;
}

bool Backend::all_finite(const Tensor& x) {
  const OpScope scope(observer_, "all_finite", {{"x", x}});
  check_operands("all_finite", {{"x", x}}, true);
  if (x.dtype() != DType::F32 && x.dtype() != DType::F16 && x.dtype() != DType::BF16)
    fail("all_finite: {} is not F32, F16 or BF16", x.describe());
  return all_finite_dense(x.is_contiguous() ? x : contiguous(x));
}

bool Backend::all_finite_dense(const Tensor& x) {
  const std::vector<float> values = to_floats(x);
  return std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); });
}

}  // namespace ebb
