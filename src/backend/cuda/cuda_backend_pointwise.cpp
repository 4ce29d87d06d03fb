// The CUDA backend's ops that map one to one onto the kernels of backend/cuda/kernels/: norms,
// broadcasting arithmetic, activations. Operands are of the activation dtype (the base class
// has checked shapes and devices).
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_memory.h"
#include "backend/cuda/kernels/activations.h"
#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/kernels/norms.h"
#include "backend/cuda/storage_types.h"

namespace ebb {

using cuda::data_of;
using cuda::mutable_data_of;
using cuda::with_storage_type;

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
    cuda::rms_norm<T>(data_of<T>(x), data_of<T>(gamma), mutable_data_of<T>(out), x.dim(0),
                      x.dim(1), eps, stream_);
  });
}

void CudaBackend::binary_into(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  CudaDeviceScope scope(device_index());
  check_activations(op == BinaryOp::Add ? "add" : "mul", {{"a", a}, {"b", b}});
  const auto kind = op == BinaryOp::Add ? cuda::ElementwiseOp::Add : cuda::ElementwiseOp::Mul;
  with_storage_type(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::elementwise<T>(kind, data_of<T>(a), a.strides().data(), data_of<T>(b),
                         b.strides().data(), mutable_data_of<T>(out), out.shape().data(),
                         out.rank(), stream_);
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

}  // namespace ebb
