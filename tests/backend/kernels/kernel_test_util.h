#pragma once
// Helpers shared by the CPU kernel tests: random inputs, error norms, the instruction sets
// this machine can run, and buffers placed at a chosen misalignment.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernels/isa.h"

namespace ebb::cpu::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// ‖got − want‖ / ‖want‖ over n values read with the given strides.
inline double relative_error(const float* got, const double* want, size_t n) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

inline std::vector<Isa> runnable_isas() {
  std::vector<Isa> isas{Isa::Portable};
  if (isa_supported(Isa::Avx2Fma)) isas.push_back(Isa::Avx2Fma);
  return isas;
}

inline std::string isa_param_name(const testing::TestParamInfo<Isa>& info) {
  return info.param == Isa::Avx2Fma ? "Avx2Fma" : "Portable";
}

// A float buffer whose data starts `shift` floats past a 64-byte boundary, to show results
// do not depend on alignment.
class ShiftedBuffer {
 public:
  ShiftedBuffer(const std::vector<float>& values, size_t shift)
      : storage_(values.size() + shift + 16) {
    auto addr = reinterpret_cast<uintptr_t>(storage_.data());
    data_ = reinterpret_cast<float*>((addr + 63) / 64 * 64) + shift;
    std::copy(values.begin(), values.end(), data_);
  }
  float* data() { return data_; }

 private:
  std::vector<float> storage_;
  float* data_;
};

}  // namespace ebb::cpu::test
