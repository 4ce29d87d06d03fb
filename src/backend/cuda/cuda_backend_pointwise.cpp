// The CUDA backend's ops that map one to one onto the kernels of backend/cuda/kernels/: norms,
// broadcasting arithmetic, activations, softmax, copies, upsampling, RoPE and timestep
// embeddings, and the finiteness check. Operands are of the activation dtype (the base class
// has checked shapes and devices).
#include <type_traits>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_memory.h"
#include "backend/cuda/kernels/activations.h"
#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/kernels/finite.h"
#include "backend/cuda/kernels/layout.h"
#include "backend/cuda/kernels/norms.h"
#include "backend/cuda/kernels/rope.h"
#include "backend/cuda/kernels/softmax.h"
#include "backend/cuda/kernels/timestep_embedding.h"
#include "backend/cuda/storage_types.h"

namespace ebb {

using cuda::data_of;
using cuda::mutable_data_of;
using cuda::with_storage_type;

Tensor CudaBackend::in_activation_dtype(const Tensor& p) {
  const DType to = activation_dtype(), from = p.dtype();
  const bool convertible = from == DType::F32 || from == DType::F16 || from == DType::BF16;
  if (from == to || !convertible || !p.is_contiguous()) return p;
  CudaDeviceScope scope(device_index());
  Tensor out = empty(p.shape(), to, MemoryTag::Scratch, "parameter conversion");
  with_storage_type(from, [&](auto from_tag) {
    with_storage_type(to, [&](auto to_tag) {
      using From = decltype(from_tag);
      using To = decltype(to_tag);
      if constexpr (!std::is_same_v<From, To>)
        cuda::convert<From, To>(data_of<From>(p), mutable_data_of<To>(out), p.numel(), stream_);
    });
  });
  return out;
}

void CudaBackend::group_norm_into(const Tensor& x, int64_t groups, const Tensor& gamma,
                                  const Tensor& beta, float eps, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("group_norm", {{"x", x}, {"gamma", gamma}, {"beta", beta}});
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::group_norm<T>(data_of<T>(x), data_of<T>(gamma), data_of<T>(beta), mutable_data_of<T>(out),
                        x.dim(0), x.dim(1), x.dim(2), groups, eps, stream_);
  });
}

void CudaBackend::layer_norm_into(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  float eps, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("layer_norm", {{"x", x}, {"gamma", gamma}, {"beta", beta}});
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::layer_norm<T>(data_of<T>(x), data_of<T>(gamma), data_of<T>(beta), mutable_data_of<T>(out),
                        x.dim(0), x.dim(1), eps, stream_);
  });
}

void CudaBackend::rms_norm_into(const Tensor& x, const Tensor& gamma, float eps,
                                const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("rms_norm", {{"x", x}, {"gamma", gamma}});
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::rms_norm<T>(data_of<T>(x), data_of<T>(gamma), mutable_data_of<T>(out), x.dim(0), x.dim(1),
                      eps, stream_);
  });
}

void CudaBackend::binary_into(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations(op == BinaryOp::Add ? "add" : "mul", {{"a", a}, {"b", b}});
  const auto kind = op == BinaryOp::Add ? cuda::ElementwiseOp::Add : cuda::ElementwiseOp::Mul;
  with_storage_type(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::elementwise<T>(kind, data_of<T>(a), a.strides().data(), data_of<T>(b), b.strides().data(),
                         mutable_data_of<T>(out), out.shape().data(), out.rank(), stream_);
  });
}

void CudaBackend::activation_into(Activation a, const Tensor& x, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("activation", {{"x", x}});
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (a == Activation::Silu)
      cuda::silu<T>(data_of<T>(x), mutable_data_of<T>(out), x.numel(), stream_);
    else
      cuda::gelu<T>(data_of<T>(x), mutable_data_of<T>(out), x.numel(),
                    a == Activation::Gelu ? cuda::Gelu::Erf : cuda::Gelu::Tanh, stream_);
  });
}

void CudaBackend::geglu_into(const Tensor& x, GeluApproximation approximation, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("geglu", {{"x", x}});
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::geglu<T>(data_of<T>(x), mutable_data_of<T>(out), out.dim(0), out.dim(1),
                   approximation == GeluApproximation::Tanh ? cuda::Gelu::Tanh : cuda::Gelu::Erf,
                   stream_);
  });
}

void CudaBackend::softmax_into(const Tensor& x, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("softmax", {{"x", x}});
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::softmax<T>(data_of<T>(x), mutable_data_of<T>(out), x.dim(0), x.dim(1), stream_);
  });
}

void CudaBackend::copy_into(const Tensor& src, const Tensor& dst) {
  CudaDeviceScope scope(device_index());
  cuda::strided_copy(src.bytes(), src.strides().data(), dst.mutable_bytes(), dst.strides().data(),
                     src.shape().data(), src.rank(), dtype_info(src.dtype()).block_bytes, stream_);
}

void CudaBackend::upsample_nearest2x_into(const Tensor& x, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  cuda::upsample_nearest2x(x.bytes(), out.mutable_bytes(), x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                           dtype_info(x.dtype()).block_bytes, stream_);
}

void CudaBackend::rope_into(const Tensor& x, int64_t heads, const Tensor& cos, const Tensor& sin,
                            RopeLayout layout, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations("rope", {{"x", x}});
  if (cos.dtype() != DType::F32 || sin.dtype() != DType::F32)
    fail_unsupported("rope", {{"x", x}, {"cos", cos}, {"sin", sin}});
  const int64_t head_dim = x.dim(2) / heads;
  const cpu::Strides4 strides{x.strides()[0], head_dim, x.strides()[1], 1};
  const auto pairs = layout == RopeLayout::InterleavedPairs ? cuda::RopePairs::Interleaved
                                                            : cuda::RopePairs::SplitHalves;
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::rope<T>(data_of<T>(x), strides, mutable_data_of<T>(out), strides, x.dim(0), heads,
                  x.dim(1), head_dim, data_of<float>(cos), data_of<float>(sin), pairs, stream_);
  });
}

void CudaBackend::rope_tables_into(const Tensor& ids, const std::vector<int64_t>& axes_dim,
                                   double theta, const Tensor& cos, const Tensor& sin) {
  CudaDeviceScope scope(device_index());
  if (ids.dtype() != DType::F32) fail_unsupported("rope_tables", {{"ids", ids}});
  cuda::rope_tables(data_of<float>(ids), ids.dim(0), axes_dim.data(),
                    static_cast<int>(axes_dim.size()), theta, mutable_data_of<float>(cos),
                    mutable_data_of<float>(sin), stream_);
}

void CudaBackend::timestep_embedding_into(const Tensor& t, const TimestepEmbeddingParams& params,
                                          const Tensor& out) {
  CudaDeviceScope scope(device_index());
  if (t.dtype() != DType::F32) fail_unsupported("timestep_embedding", {{"t", t}});
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::timestep_embedding<T>(data_of<float>(t), t.dim(0), out.dim(1), params,
                                mutable_data_of<T>(out), stream_);
  });
}

bool CudaBackend::all_finite_dense(const Tensor& x) {
  CudaDeviceScope scope(device_index());
  const Tensor flag = empty({1}, DType::U32, MemoryTag::Scratch, "all_finite");
  cuda::check(cudaMemsetAsync(flag.mutable_bytes(), 0, sizeof(unsigned), stream_),
              "cudaMemsetAsync");
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::flag_nonfinite<T>(data_of<T>(x), x.numel(), mutable_data_of<unsigned>(flag), stream_);
  });
  unsigned bad = 0;
  copy_to_host(flag, &bad);
  return bad == 0;
}

}  // namespace ebb
