#pragma once
// Arbitrary bytes for tests, the same for a seed on every run and platform.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace ebb::test {

inline std::vector<std::byte> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> bytes(n);
  for (auto& b : bytes) b = static_cast<std::byte>(rng());
  return bytes;
}

}  // namespace ebb::test
