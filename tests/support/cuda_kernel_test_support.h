#pragma once
// GPU kernel tests (random inputs come from backend/op_test_util.h): typed device arrays
// poisoned with NaN, host conversion to and from the storage types (f32, f16, bf16), and
// comparison with a tolerance per storage type. Include only where EBB_HAVE_CUDA is defined.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/op_test_util.h"
#include "support/cuda_test_support.h"
#include "tensor/float_convert.h"

namespace ebb::test {

// Rounds like the GPU's _rn conversions.
template <class T>
T storage_from_f32(float v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    if constexpr (std::is_same_v<T, __half>) {
      __half_raw raw;
      raw.x = f32_to_f16(v);
      return __half(raw);
    } else {
      __nv_bfloat16_raw raw;
      raw.x = f32_to_bf16(v);
      return __nv_bfloat16(raw);
    }
  }
}

template <class T>
float storage_to_f32(T t) {
  if constexpr (std::is_same_v<T, float>) {
    return t;
  } else {
    if constexpr (std::is_same_v<T, __half>) {
      return f16_to_f32(static_cast<__half_raw>(t).x);
    } else {
      return bf16_to_f32(static_cast<__nv_bfloat16_raw>(t).x);
    }
  }
}

// Values as the storage type holds them: what a reference must start from.
template <class T>
std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = storage_to_f32(storage_from_f32<T>(x));
  return v;
}

// `n` elements of T on the device (at least one byte, so null never stands for an array).
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n), buffer_(n * sizeof(T) + 16) {}
  explicit DeviceArray(const std::vector<float>& values) : DeviceArray(values.size()) {
    upload(values);
  }

  T* get() const { return buffer_.get<T>(); }
  size_t size() const { return n_; }

  void upload(const std::vector<float>& values) {
    std::vector<T> host(values.size());
    for (size_t i = 0; i < values.size(); ++i) host[i] = storage_from_f32<T>(values[i]);
    cuda_check(cudaMemcpy(get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
               "cudaMemcpy H2D");
  }
  // Every element NaN, so one a kernel leaves unwritten fails any comparison.
  void poison() { upload(std::vector<float>(n_, std::nanf(""))); }
  std::vector<float> download() const {
    std::vector<T> host(n_);
    cuda_check(cudaMemcpy(host.data(), get(), n_ * sizeof(T), cudaMemcpyDeviceToHost),
               "cudaMemcpy D2H");
    std::vector<float> values(n_);
    for (size_t i = 0; i < n_; ++i) values[i] = storage_to_f32(host[i]);
    return values;
  }

 private:
  size_t n_;
  DeviceBuffer buffer_;
};

// |got - want| <= rel · |want| + abs.
struct Tolerance {
  double rel, abs;
};

// f32: the 1e-5 relative the GPU backend promises (abs covers values that cancel to ~0);
// f16 and bf16: a little over one rounding of the output (2^-11, 2^-8) plus f32 differences.
template <class T>
Tolerance storage_tolerance(double scale = 1.0) {
  if constexpr (std::is_same_v<T, float>) {
    return {1e-5, 1e-6 * scale};
  } else if constexpr (std::is_same_v<T, __half>) {
    return {1e-3, 1e-3 * scale};
  } else {
    return {8e-3, 8e-3 * scale};
  }
}

template <class T>
const char* storage_name() {
  return std::is_same_v<T, float> ? "f32" : std::is_same_v<T, __half> ? "f16" : "bf16";
}

inline void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                         Tolerance tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool same_special =
        (std::isnan(got[i]) && std::isnan(want[i])) || (std::isinf(want[i]) && got[i] == want[i]);
    const double err = std::fabs(double(got[i]) - double(want[i]));
    if (same_special || err <= tol.rel * std::fabs(double(want[i])) + tol.abs) continue;
    if (bad++ == 0) first = i;
  }
  if (bad == 0) return;
  ADD_FAILURE() << what << ": " << bad << " of " << got.size() << " elements differ; first at "
                << first << ": got " << got[first] << ", want " << want[first] << " (rel "
                << tol.rel << ", abs " << tol.abs << ")";
}

// The storage types every kernel is instantiated for, as a gtest type list.
using StorageTypes = testing::Types<float, __half, __nv_bfloat16>;

class StorageTypeNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return storage_name<T>();
  }
};

}  // namespace ebb::test
