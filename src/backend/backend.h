#pragma once
// The compute interface models are written against, once for every device. Ops take tensors
// of this backend's device and return new tensors from its arena (tag: activations).
// Activations are of the backend's activation dtype (the CPU's is F32; CUDA's F16 unless asked
// otherwise); host code reads and writes them as f32 through write_floats / read_floats.
// Weights of linear and conv2d may be F32, F16, BF16 or GGUF-quantized where the backend reads
// them (the CPU backend dequantizes blocks of rows into scratch). Parameters (weights, biases,
// norm affines) are on the backend's device like every operand; a device backend's come from
// the weight store's uploads (see parameter()).
// An optional operand (a bias, an affine parameter) is an undefined Tensor: `Tensor{}`.
//
// Each public op checks shapes, dtypes and devices and allocates its output here; the backend
// implements the *_into hooks. Every failure is an ebb::Error naming the op and the operands.
// A backend serves one calling thread; ops parallelise internally.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/arena.h"
#include "backend/cpu/kernels/activations.h"
#include "backend/cpu/kernels/rope.h"
#include "backend/cpu/kernels/timestep_embedding.h"
#include "backend/op_observer.h"
#include "tensor/tensor.h"

namespace ebb {

struct Conv2dGeometry {
  int stride = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;

  static Conv2dGeometry uniform(int stride, int pad) { return {stride, pad, pad, pad, pad}; }
};

enum class BinaryOp : uint8_t { Add, Mul };
enum class Activation : uint8_t { Silu, Gelu, GeluTanh };

// Parameter types of the kernels' own headers, shared by every backend.
using cpu::GeluApproximation;
using cpu::RopeLayout;
using cpu::TimestepEmbeddingParams;

class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  Device device() const { return arena_.device(); }
  Arena& arena() { return arena_; }
  // The dtype of op outputs and of empty() by default: F32, F16 or BF16.
  DType activation_dtype() const { return activation_dtype_; }
  // Later ops compute in and output `t`; tensors made before keep their dtype. A pipeline
  // redoes a stage that overflowed f16 in F32 this way. ebb::Error for a dtype the backend
  // cannot compute in (the CPU: anything but F32).
  void set_activation_dtype(DType t);
  // Every op from now on is reported to `observer` (a profiler); nullptr stops reporting.
  void set_op_observer(OpObserver* observer) { observer_ = observer; }

  // --- memory ---
  // Uninitialised dense tensor from the arena (dtype: the activation dtype unless given); `op`
  // names the caller if the budget is hit.
  Tensor empty(const Shape& shape, std::optional<DType> dtype = {},
               MemoryTag tag = MemoryTag::Activations, std::string_view op = "empty");
  // Host bytes into a dense tensor of this backend, and back; `bytes` must equal nbytes().
  void write(const Tensor& dst, const void* src, uint64_t bytes);
  void read(const Tensor& src, void* dst, uint64_t bytes);
  // Host f32 values into a dense F32, F16 or BF16 tensor (rounded to nearest even), and back.
  // The value count must equal numel().
  void write_floats(const Tensor& dst, std::span<const float> values);
  void read_floats(const Tensor& src, std::span<float> values);
  // A new activation tensor holding `values`; any tensor (views too) as f32 host values.
  Tensor from_floats(const Shape& shape, std::span<const float> values,
                     std::string_view op = "from_floats");
  std::vector<float> to_floats(const Tensor& t);
  // A tensor of `source` (another device, or another activation dtype) as this backend's
  // activation; `t` itself when it already is one. Crosses devices through host memory.
  Tensor import_from(Backend& source, const Tensor& t);

  // --- ops ---
  // x [..., in], w [out, in] (PyTorch's layout), b [out] or none -> [..., out].
  Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
  // x [N, C, H, W], w [O, C, kh, kw], b [O] or none -> [N, O, H', W'].
  Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad);
  Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g);
  // x [N, C, ...] normalised over each of `groups` channel groups; gamma, beta [C] or none.
  Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta,
                    float eps);
  // Over the last dimension D; gamma, beta [D] or none.
  Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps);
  Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps);
  // Elementwise with NumPy broadcasting; operands may be strided views.
  Tensor add(const Tensor& a, const Tensor& b);
  Tensor mul(const Tensor& a, const Tensor& b);
  // Layout ops move elements of any plain (not block-quantized) dtype; outputs are dense.
  // contiguous, permute, concat and split read strided views.
  Tensor contiguous(const Tensor& x);
  Tensor permute(const Tensor& x, const std::vector<int>& dims);
  Tensor concat(const std::vector<Tensor>& xs, int dim);
  std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);
  // x [N, C, H, W] -> [N, C, 2H, 2W], each pixel repeated 2x2.
  Tensor upsample_nearest2x(const Tensor& x);

  // Activations, elementwise.
  Tensor silu(const Tensor& x);
  Tensor gelu(const Tensor& x, GeluApproximation approximation = GeluApproximation::None);
  // x [..., 2C] (hidden, then gate) -> [..., C]: hidden · gelu(gate), as diffusers' GEGLU.
  Tensor geglu(const Tensor& x, GeluApproximation approximation = GeluApproximation::None);
  // Over the last dimension.
  Tensor softmax(const Tensor& x);
  // Multi-head scaled-dot-product attention, memory O(L·D) (no score matrix).
  // q [B, Lq, H·D], k and v [B, Lkv, H·D] -> [B, Lq, H·D]. q, k, v may be views whose last
  // dimension is dense (e.g. narrowed out of a fused qkv projection). mask: additive,
  // broadcastable to [B, H, Lq, Lkv], or none. scale: 1/√D when empty.
  Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                   const Tensor& mask = {}, std::optional<float> scale = {});
  // Rotary embedding of x [B, L, H·D] per head; cos and sin [L, D/2] (rope_tables).
  Tensor rope(const Tensor& x, int64_t heads, const Tensor& cos, const Tensor& sin,
              RopeLayout layout);
  // Flux's position tables: ids [L, axes] -> cos, sin [L, Σ axes_dim / 2], F32 on every
  // backend (positions beyond 2048 are not exact in f16); ids F32 too.
  std::pair<Tensor, Tensor> rope_tables(const Tensor& ids, const std::vector<int64_t>& axes_dim,
                                        double theta);
  // Sinusoidal embedding of timesteps t [N] (F32 on every backend) -> [N, dim].
  Tensor timestep_embedding(const Tensor& t, int64_t dim, const TimestepEmbeddingParams& params);
  // Whether every element of the F32, F16 or BF16 tensor `x` (views too) is finite: no NaN,
  // no infinity.
  bool all_finite(const Tensor& x);

 protected:
  explicit Backend(std::unique_ptr<DeviceMemory> memory, DType activation_dtype = DType::F32)
      : arena_(std::move(memory)), activation_dtype_(activation_dtype) {}

  // A parameter operand (weight, bias, norm affine) as this backend reads it. Ops call it
  // for every such operand before checking devices; `p` may be undefined. The CPU backend
  // returns `p` as is; the CUDA backend converts a device parameter of another float type.
  virtual Tensor parameter(const Tensor& p) { return p; }
  virtual bool computes_in(DType t) const { return t == DType::F32; }

  // Hooks. Shapes and devices are checked and `out` is allocated (dense) by the caller;
  // dtypes are the backend's to check (fail_unsupported). x, gamma, beta, b are dense.
  virtual void copy_from_host(const Tensor& dst, const void* src) = 0;
  virtual void copy_to_host(const Tensor& src, void* dst) = 0;
  // x [M, K]; out [M, N].
  virtual void linear_into(const Tensor& x, const Tensor& w, const Tensor& b,
                           const Tensor& out) = 0;
  virtual void conv2d_into(const Tensor& x, const Tensor& w, const Tensor& b,
                           const Conv2dGeometry& g, const Tensor& out) = 0;
  // x [N, C, S] (spatial dimensions flattened).
  virtual void group_norm_into(const Tensor& x, int64_t groups, const Tensor& gamma,
                               const Tensor& beta, float eps, const Tensor& out) = 0;
  // x [rows, D].
  virtual void layer_norm_into(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                               const Tensor& out) = 0;
  virtual void rms_norm_into(const Tensor& x, const Tensor& gamma, float eps,
                             const Tensor& out) = 0;
  // a and b are already broadcast to out's shape (stride 0 where repeated).
  virtual void binary_into(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // Same shape and dtype, any strides on both sides.
  virtual void copy_into(const Tensor& src, const Tensor& dst) = 0;
  virtual void upsample_nearest2x_into(const Tensor& x, const Tensor& out) = 0;
  virtual void activation_into(Activation a, const Tensor& x, const Tensor& out) = 0;
  // x [rows, 2C]; out [rows, C].
  virtual void geglu_into(const Tensor& x, GeluApproximation approximation, const Tensor& out) = 0;
  // x [rows, D].
  virtual void softmax_into(const Tensor& x, const Tensor& out) = 0;
  // q, k, v as given (last dimension dense); mask already broadcast to [B, H, Lq, Lkv].
  virtual void attention_into(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                              const Tensor& mask, std::optional<float> scale,
                              const Tensor& out) = 0;
  virtual void rope_into(const Tensor& x, int64_t heads, const Tensor& cos, const Tensor& sin,
                         RopeLayout layout, const Tensor& out) = 0;
  virtual void rope_tables_into(const Tensor& ids, const std::vector<int64_t>& axes_dim,
                                double theta, const Tensor& cos, const Tensor& sin) = 0;
  virtual void timestep_embedding_into(const Tensor& t, const TimestepEmbeddingParams& params,
                                       const Tensor& out) = 0;
  // x dense. This default reads x back to the host; a device answers on the device.
  virtual bool all_finite_dense(const Tensor& x);

  // "linear on cpu does not support x F32[2, 8], w Q2_K[4, 8]"
  [[noreturn]] void fail_unsupported(std::string_view op,
                                     std::initializer_list<Operand> operands) const;

 private:
  Tensor output(const Shape& shape, DType dtype, std::string_view op);
  // Defined operands must live on this backend's device and, unless strided inputs are
  // allowed, be dense.
  void check_operands(std::string_view op, std::initializer_list<Operand> operands,
                      bool allow_strided) const;
  Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
  Tensor activation(Activation a, const Tensor& x, std::string_view name);

  Arena arena_;
  DType activation_dtype_;
  OpObserver* observer_ = nullptr;
};

}  // namespace ebb
