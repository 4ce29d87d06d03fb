#pragma once
// Sizes read from untrusted files are multiplied and added; these helpers make overflow an
// explicit, reportable condition instead of silent wrap-around.
#include <cstdint>
#include <optional>

namespace ebb {

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

}  // namespace ebb
