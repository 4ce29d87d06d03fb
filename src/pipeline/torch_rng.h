#pragma once
// Gaussian noise identical, bit for bit, to PyTorch's CPU generator, so that a seed gives the
// same initial latents as diffusers / A1111 with a CPU generator:
//
//   g = torch.Generator().manual_seed(seed)
//   torch.randn(n, generator=g)      # float32, contiguous; repeated calls continue the stream
//
// What it reproduces (PyTorch 2.x on x86-64 with AVX2 or AVX-512, the capability nearly every
// desktop and server CPU dispatches to):
//  - the engine: MT19937 seeded with the low 32 bits of the seed;
//  - n >= 16: n uniform floats (24 random bits each), Box–Muller on blocks of 16 (8 pairs:
//    element j and j + 8), and for n % 16 != 0 the last 16 outputs redrawn from 16 fresh
//    uniforms; log, sin and cos as PyTorch's AVX2 kernel computes them (Cephes polynomials,
//    with the fused multiply-adds its compiled kernel uses);
//  - n < 16: one double Box–Muller pair per two outputs (53-bit uniforms), the second value
//    of a pair kept on the generator for the next call, as PyTorch does.
// Not reproduced: PyTorch on CPUs without AVX2 (e.g. ARM), whose kernel uses the platform libm.
#include <cstdint>
#include <optional>
#include <random>
#include <span>

namespace ebb {

class TorchCpuGenerator {
 public:
  explicit TorchCpuGenerator(uint64_t seed);

  // Fills out like one torch.randn(out.size(), generator=g) call; successive calls continue
  // the stream like successive torch.randn calls on the same generator.
  void randn(std::span<float> out);

 private:
  float uniform_float();
  double uniform_double();
  void randn_vectorized(std::span<float> out);
  float randn_scalar();

  std::mt19937 engine_;
  std::optional<double> cached_normal_;
};

}  // namespace ebb
