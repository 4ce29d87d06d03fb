#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/attention.h"
#include "backend/cuda/cublaslt_gemm.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_memory.h"
#include "backend/cuda/cudnn_attention.h"
#include "backend/cuda/cudnn_conv.h"
#include "backend/cuda/dequantize.h"
#include "backend/cuda/im2col.h"
#include "backend/cuda/kernels/conv3x3.h"
#include "core/error.h"

namespace ebb {
namespace {

bool float_activation(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

DType checked_activation_dtype(DType t) {
  if (!float_activation(t))
    fail("CUDA backend: activations must be F32, F16 or BF16, not {}", dtype_name(t));
  return t;
}

// One image's convolution geometry from NCHW x, OIHW w and the output, for either path.
cuda::Im2colShape conv_shape(const Tensor& x, const Tensor& w, const Conv2dGeometry& g,
                             const Tensor& out) {
  cuda::Im2colShape s;
  s.channels = x.dim(1);
  s.height = x.dim(2);
  s.width = x.dim(3);
  s.kernel_h = w.dim(2);
  s.kernel_w = w.dim(3);
  s.out_h = out.dim(2);
  s.out_w = out.dim(3);
  s.stride = g.stride;
  s.pad_top = g.pad_top;
  s.pad_left = g.pad_left;
  return s;
}

bool aligned_16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// q, k or v [B, L, H·D] as the flash kernel reads it: 16-byte pieces.
bool flash_operand(const Tensor& t) {
  return aligned_16(t.bytes()) && t.strides()[0] % 8 == 0 && t.strides()[1] % 8 == 0;
}

}  // namespace

void require_cuda_device(int index) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess)
    fail(
        "no usable CUDA device for cuda{}: {} (is an NVIDIA GPU and its driver installed? "
        "--backend cpu computes without one)",
        index, cudaGetErrorString(status));
  if (index < 0 || index >= count)
    fail("no device cuda{}: {} CUDA device{} present", index, count, count == 1 ? " is" : "s are");
}

// The arena's memory owns the compute stream: blocks are released in its order, and the last
// storage may outlive the backend.
struct CudaBackend::StreamOrderedMemory {
  std::unique_ptr<DeviceMemory> memory;
  cudaStream_t stream = nullptr;

  explicit StreamOrderedMemory(int device) {
    require_cuda_device(device);
    auto cuda = std::make_unique<CudaMemory>(device);
    stream = cuda->stream();
    memory = std::move(cuda);
  }
};

CudaBackend::CudaBackend(const CudaBackendOptions& options)
    : CudaBackend(options, StreamOrderedMemory(options.device)) {}

CudaBackend::CudaBackend(const CudaBackendOptions& options, StreamOrderedMemory memory)
    : Backend(std::move(memory.memory), checked_activation_dtype(options.activation_dtype)),
      max_im2col_bytes_(options.max_im2col_bytes),
      implicit_conv_(options.implicit_conv),
      stream_(memory.stream),
      attention_choice_(options.attention),
      copies_(options.device) {
  arena().set_budget(options.budget);
  CudaDeviceScope scope(options.device);
  gemm_ = std::make_unique<cuda::CublasLtGemm>(arena(), options.allow_tf32);
  if (options.use_cudnn && cuda::cudnn_loaded())
    cudnn_ = std::make_unique<cuda::CudnnConv>(arena(), stream_, options.allow_tf32,
                                               options.max_im2col_bytes);
  if (attention_choice_ != AttentionKernelChoice::Ebb && cuda::cudnn_attention_loaded())
    cudnn_attention_ = std::make_unique<cuda::CudnnAttention>(arena(), stream_);
}

CudaBackend::~CudaBackend() {
  CudaDeviceScope scope(device_index(), std::nothrow);
  // Nothing may be freed while a kernel might still read it; a destructor cannot report.
  cudaStreamSynchronize(stream_);
  cudnn_attention_.reset();
  cudnn_.reset();
  gemm_.reset();
}

void CudaBackend::wait(const CopyEvent& upload) {
  if (upload.get())
    cuda::check(cudaStreamWaitEvent(stream_, upload.get(), 0), "cudaStreamWaitEvent");
}

void CudaBackend::synchronize() {
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

void CudaBackend::order_uploads_after_compute() {
  CudaDeviceScope scope(device_index());
  cudaEvent_t computed = nullptr;
  cuda::check(cudaEventCreateWithFlags(&computed, cudaEventDisableTiming), "cudaEventCreate");
  const cudaError_t recorded = cudaEventRecord(computed, stream_);
  const cudaError_t waited =
      recorded == cudaSuccess ? cudaStreamWaitEvent(copies_.stream(), computed, 0) : recorded;
  cudaEventDestroy(computed);  // the wait holds what it needs
  cuda::check(waited, "ordering uploads after compute");
}

void CudaBackend::upload_staged(std::byte* dst, std::span<const std::byte> src, uint64_t block,
                                int in_flight, std::deque<CopyEvent>& queued) {
  for (uint64_t at = 0; at < src.size(); at += block) {
    const uint64_t n = std::min<uint64_t>(block, src.size() - at);
    // The oldest queued copy is waited for and its block returns to the pool.
    while (queued.size() >= static_cast<size_t>(std::max(in_flight, 1))) queued.pop_front();
    std::shared_ptr<Storage> staging = pinned_.acquire(n, "upload staging");
    std::byte* const host = staging->data();  // before the move below hands staging over
    std::memcpy(host, src.data() + at, n);
    queued.push_back(copies_.upload(dst + at, host, n, std::move(staging)));
  }
}

Tensor CudaBackend::parameter(const Tensor& p) {
  // Anything else (a parameter left in host memory) fails the op's device check, named.
  return p.defined() && p.device() == device() ? in_activation_dtype(p) : p;
}

bool CudaBackend::computes_in(DType t) const {
  return float_activation(t);
}

void CudaBackend::copy_from_host(const Tensor& dst, const void* src) {
  CudaDeviceScope scope(device_index());
  cuda::check(
      cudaMemcpyAsync(dst.mutable_bytes(), src, dst.nbytes(), cudaMemcpyHostToDevice, stream_),
      "cudaMemcpyAsync (host to device)");
  synchronize();
}

void CudaBackend::copy_to_host(const Tensor& src, void* dst) {
  CudaDeviceScope scope(device_index());
  cuda::check(cudaMemcpyAsync(dst, src.bytes(), src.nbytes(), cudaMemcpyDeviceToHost, stream_),
              "cudaMemcpyAsync (device to host)");
  synchronize();
}

void CudaBackend::check_activations(std::string_view op,
                                    std::initializer_list<Operand> operands) const {
  for (const Operand& o : operands)
    if (o.tensor.defined() && o.tensor.dtype() != activation_dtype())
      fail_unsupported(op, operands);
}

Tensor CudaBackend::product_weight(const Tensor& w, std::string_view op) {
  if (w.dtype() == activation_dtype()) return w;
  if (!cuda_can_dequantize(w.dtype())) return {};
  Tensor decoded = empty(w.shape(), activation_dtype(), MemoryTag::Scratch, op);
  cuda_dequantize(w.dtype(), w.bytes(), decoded.mutable_bytes(), activation_dtype(),
                  static_cast<uint64_t>(w.numel()), stream_);
  return decoded;
}

void CudaBackend::linear_into(const Tensor& x, const Tensor& w, const Tensor& b,
                              const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("linear", {{"x", x}, {"b", b}});
  const Tensor wt = product_weight(w, "linear weight");
  if (!wt.defined()) fail_unsupported("linear", {{"x", x}, {"w", w}});
  const int64_t rows = x.dim(0), in = x.dim(1), outs = w.dim(0);
  // Row-major out [rows, outs] is column-major [outs, rows] = w · xᵀ.
  cuda::GemmArgs g;
  g.ab_type = g.d_type = activation_dtype();
  g.trans_a = true;
  g.m = outs;
  g.n = rows;
  g.k = in;
  g.a = wt.bytes();
  g.lda = in;
  g.b = x.bytes();
  g.ldb = in;
  g.d = out.mutable_bytes();
  g.ldd = outs;
  g.bias = b.defined() ? b.bytes() : nullptr;
  gemm_->run(g, stream_);
}

void CudaBackend::conv2d_into(const Tensor& x, const Tensor& w, const Tensor& b,
                              const Conv2dGeometry& geometry, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("conv2d", {{"x", x}, {"b", b}});
  const Tensor wt = product_weight(w, "conv2d weight");
  if (!wt.defined()) fail_unsupported("conv2d", {{"x", x}, {"w", w}});
  if (conv2d_cudnn(x, wt, b, geometry, out) || conv2d_implicit(x, wt, b, geometry, out)) return;
  const DType t = activation_dtype();
  const uint64_t esize = dtype_info(t).block_bytes;
  const cuda::Im2colShape s = conv_shape(x, w, geometry, out);
  const int64_t k = s.channels * s.kernel_h * s.kernel_w, pixels = s.out_h * s.out_w;
  const int64_t outs = w.dim(0);
  // A 1x1 kernel without stride or padding reads the image itself as the patch matrix.
  const bool direct = s.kernel_h == 1 && s.kernel_w == 1 && s.stride == 1 &&
                      geometry.pad_top == 0 && geometry.pad_left == 0 && geometry.pad_bottom == 0 &&
                      geometry.pad_right == 0;
  // Patch matrices of `group` images at once (a 1x1 kernel: every image) feed one strided
  // batched GEMM: at batch 2 (guidance) one launch fills the GPU better than two. A large image
  // is gathered in column chunks, one image at a time.
  const int64_t images = x.dim(0);
  int64_t chunk = pixels, group = images;
  Tensor columns;
  if (!direct) {
    const auto fit = static_cast<int64_t>(max_im2col_bytes_ / (static_cast<uint64_t>(k) * esize));
    chunk = std::min(pixels, std::max<int64_t>(128, fit / 128 * 128));
    group = chunk == pixels ? std::clamp<int64_t>(fit / pixels, 1, images) : 1;
    columns = empty({group, k, chunk}, t, MemoryTag::Scratch, "conv2d im2col");
  }
  const auto* x_bytes = x.bytes();
  auto* out_bytes = out.mutable_bytes();
  const int64_t image_elems = s.channels * s.height * s.width, result_elems = outs * pixels;
  for (int64_t n0 = 0; n0 < images; n0 += group) {
    const int64_t count_images = std::min(group, images - n0);
    const std::byte* image = x_bytes + n0 * image_elems * esize;
    std::byte* result = out_bytes + n0 * result_elems * esize;
    if (b.defined())
      for (int64_t i = 0; i < count_images; ++i)
        cuda::broadcast_rows(t, b.bytes(), result + i * result_elems * esize, outs, pixels,
                             stream_);
    for (int64_t p0 = 0; p0 < pixels; p0 += chunk) {
      const int64_t count = std::min(chunk, pixels - p0);
      // Row-major out [O, P] is column-major [P, O] = patchesᵀ · wᵀ.
      cuda::GemmArgs g;
      g.ab_type = g.d_type = t;
      g.m = count;
      g.n = outs;
      g.k = k;
      if (direct) {
        g.a = image + p0 * esize;
        g.lda = pixels;
        g.stride_a = image_elems;
      } else {
        for (int64_t i = 0; i < count_images; ++i)
          cuda::im2col(t, image + i * image_elems * esize, s, p0, count,
                       columns.mutable_bytes() + i * k * count * esize, stream_);
        g.a = columns.bytes();
        g.lda = count;
        g.stride_a = k * count;
      }
      g.b = wt.bytes();
      g.ldb = k;
      g.stride_b = 0;  // every image by the same weight
      g.d = result + p0 * esize;
      g.ldd = pixels;
      g.stride_d = result_elems;
      g.batch = static_cast<int>(count_images);
      g.beta = b.defined() ? 1.0f : 0.0f;
      gemm_->run(g, stream_);
    }
  }
}

bool CudaBackend::conv2d_cudnn(const Tensor& x, const Tensor& w, const Tensor& b,
                               const Conv2dGeometry& g, const Tensor& out) {
  // cuDNN pads symmetrically; the VAE's asymmetric downsampling pads only bottom and right.
  if (!cudnn_ || g.pad_top != g.pad_bottom || g.pad_left != g.pad_right) return false;
  cuda::CudnnConvArgs a;
  a.dtype = activation_dtype();
  a.batch = x.dim(0);
  a.outputs = w.dim(0);
  a.shape = conv_shape(x, w, g, out);
  a.x = x.bytes();
  a.w = w.bytes();
  a.bias = b.defined() ? b.bytes() : nullptr;
  a.out = out.mutable_bytes();
  return cudnn_->run(a);
}

bool CudaBackend::conv2d_implicit(const Tensor& x, const Tensor& w, const Tensor& b,
                                  const Conv2dGeometry& g, const Tensor& out) {
  const DType t = activation_dtype();
  const cuda::Conv3x3Shape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0)};
  if (!implicit_conv_ || t == DType::F32 || w.dim(2) != 3 || w.dim(3) != 3 || g.stride != 1 ||
      g.pad_top != 1 || g.pad_bottom != 1 || g.pad_left != 1 || g.pad_right != 1 ||
      !cuda::conv3x3_applies(s) || !cuda::conv3x3_beats_im2col(s) || !aligned_16(x.bytes()) ||
      !aligned_16(w.bytes()) || !aligned_16(out.bytes()))
    return false;
  const cuda::Conv3x3Plan plan =
      cuda::conv3x3_plan(s, dtype_info(t).block_bytes, max_im2col_bytes_);
  if (plan.band_rows == 0) return false;
  const Tensor shifted = empty({plan.shifted_elems}, t, MemoryTag::Scratch, "conv2d shifted input");
  Tensor partials;
  if (plan.partial_floats > 0)
    partials = empty({plan.partial_floats}, DType::F32, MemoryTag::Scratch, "conv2d partial sums");
  cuda::Conv3x3Args a;
  a.dtype = t;
  a.shape = s;
  a.x = x.bytes();
  a.w = w.bytes();
  a.bias = b.defined() ? b.bytes() : nullptr;
  a.out = out.mutable_bytes();
  a.shifted = shifted.mutable_bytes();
  a.partials = partials.defined() ? reinterpret_cast<float*>(partials.mutable_bytes()) : nullptr;
  cuda::conv3x3(plan, a, stream_);
  return true;
}

void CudaBackend::attention_into(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                                 const Tensor& mask, std::optional<float> scale,
                                 const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("attention", {{"q", q}, {"k", k}, {"v", v}, {"mask", mask}});
  const int64_t head_dim = q.dim(2) / heads;
  const bool flash = activation_dtype() != DType::F32 && !mask.defined() && k.dim(1) > 0 &&
                     cuda_attention_supports_head_dim(head_dim) && flash_operand(q) &&
                     flash_operand(k) && flash_operand(v) && aligned_16(out.bytes());
  if (!flash) {
    attention_with_scores(q, k, v, heads, mask,
                          scale.value_or(1.0f / std::sqrt(static_cast<float>(head_dim))), out);
    return;
  }
  const auto strides = [&](const Tensor& t) {
    return cpu::Strides4{t.strides()[0], head_dim, t.strides()[1], 1};
  };
  CudaAttentionArgs a;
  a.dtype = activation_dtype();
  a.batch = q.dim(0);
  a.heads = heads;
  a.q_len = q.dim(1);
  a.kv_len = k.dim(1);
  a.head_dim = head_dim;
  a.q = q.bytes();
  a.q_strides = strides(q);
  a.k = k.bytes();
  a.k_strides = strides(k);
  a.v = v.bytes();
  a.v_strides = strides(v);
  a.out = out.mutable_bytes();
  a.out_strides = strides(out);
  a.scale = scale;
  const AttentionProblem problem{a.batch, a.heads, a.q_len, a.kv_len, a.head_dim};
  if (cudnn_attention_ && wants_cudnn_attention(attention_choice_, problem) &&
      cudnn_attention_->run(a))
    return;
  cuda_attention(a, stream_);
}

void CudaBackend::attention_with_scores(const Tensor& q, const Tensor& k, const Tensor& v,
                                        int64_t heads, const Tensor& mask, float scale,
                                        const Tensor& out) {
  const DType t = activation_dtype();
  const uint64_t esize = dtype_info(t).block_bytes;
  const int64_t lq = q.dim(1), lk = k.dim(1), d = q.dim(2) / heads;
  Tensor scores = empty({1, heads, lq, lk}, t, MemoryTag::Scratch, "attention scores");
  Tensor probs = empty({1, heads, lq, lk}, t, MemoryTag::Scratch, "attention scores");
  for (int64_t b = 0; b < q.dim(0); ++b) {
    // Per head, row-major scores [Lq, Lk] are column-major [Lk, Lq] = k · qᵀ (scaled).
    cuda::GemmArgs s;
    s.ab_type = s.d_type = t;
    s.trans_a = true;
    s.m = lk;
    s.n = lq;
    s.k = d;
    s.a = k.bytes() + b * k.strides()[0] * esize;
    s.lda = k.strides()[1];
    s.b = q.bytes() + b * q.strides()[0] * esize;
    s.ldb = q.strides()[1];
    s.d = scores.mutable_bytes();
    s.ldd = lk;
    s.alpha = scale;
    s.batch = static_cast<int>(heads);
    s.stride_a = d;
    s.stride_b = d;
    s.stride_d = lq * lk;
    gemm_->run(s, stream_);
    if (mask.defined()) binary_into(BinaryOp::Add, scores, mask.narrow(0, b, 1), scores);
    softmax_into(scores.reshape({heads * lq, lk}), probs.reshape({heads * lq, lk}));
    // Per head, row-major out [Lq, D] (rows H·D apart) is column-major [D, Lq] = vᵀ · probsᵀ.
    cuda::GemmArgs o;
    o.ab_type = o.d_type = t;
    o.m = d;
    o.n = lq;
    o.k = lk;
    o.a = v.bytes() + b * v.strides()[0] * esize;
    o.lda = v.strides()[1];
    o.b = probs.bytes();
    o.ldb = lk;
    o.d = out.mutable_bytes() + b * out.strides()[0] * esize;
    o.ldd = out.strides()[1];
    o.batch = static_cast<int>(heads);
    o.stride_a = d;
    o.stride_b = lq * lk;
    o.stride_d = d;
    gemm_->run(o, stream_);
  }
}

}  // namespace ebb
