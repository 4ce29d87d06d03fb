#pragma once
// From a tensor's dtype to the storage type the CUDA kernels are instantiated for: host code
// calls `with_storage_type(t, [&](auto tag) { using T = decltype(tag); ... })`.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/error.h"
#include "tensor/tensor.h"

namespace ebb::cuda {

template <class F>
void with_storage_type(DType t, F&& f) {
  switch (t) {
    case DType::F32:
      return f(float{});
    case DType::F16:
      return f(__half{});
    case DType::BF16:
      return f(__nv_bfloat16{});
    default:
      fail("CUDA kernels store F32, F16 or BF16, not {}", dtype_name(t));
  }
}

template <class T>
const T* data_of(const Tensor& t) {
  return t.defined() ? reinterpret_cast<const T*>(t.bytes()) : nullptr;
}

template <class T>
T* mutable_data_of(const Tensor& t) {
  return reinterpret_cast<T*>(t.mutable_bytes());
}

}  // namespace ebb::cuda
