#include <cuda_runtime.h>

#include <cmath>

#include "backend/cuda/kernels/grid_stride.cuh"
#include "backend/cuda/kernels/launch.h"
#include "backend/cuda/kernels/numeric.cuh"
#include "backend/cuda/kernels/timestep_embedding.h"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;

struct Frequencies {
  int64_t half;
  float neg_log_period, denominator;
  float scale, time_factor;
  int64_t sin_at, cos_at;
};

// One thread per (timestep, frequency). Each f32 step is rounded where the CPU (and torch)
// round it; the exponential is taken in double and rounded once, which is what the CPU's
// correctly rounded expf gives.
template <class T>
__global__ void __launch_bounds__(kThreads)
    timestep_kernel(const float* __restrict__ timesteps, int64_t n, int64_t dim, Frequencies f,
                    T* __restrict__ out) {
  for_each_index(n * f.half, [&](int64_t i) {
    const int64_t r = i / f.half, k = i % f.half;
    const float exponent =
        __fdiv_rn(__fmul_rn(f.neg_log_period, static_cast<float>(k)), f.denominator);
    const float freq = static_cast<float>(exp(static_cast<double>(exponent)));
    const float t = __fmul_rn(timesteps[r], f.time_factor);
    const double arg = __fmul_rn(f.scale, __fmul_rn(t, freq));
    T* row = out + r * dim;
    row[f.sin_at + k] = from_f32<T>(static_cast<float>(sin(arg)));
    row[f.cos_at + k] = from_f32<T>(static_cast<float>(cos(arg)));
    if (k == 0 && dim % 2 == 1) row[dim - 1] = from_f32<T>(0.0f);
  });
}

}  // namespace

template <class T>
void timestep_embedding(const float* timesteps, int64_t n, int64_t dim,
                        const cpu::TimestepEmbeddingParams& p, T* out, cudaStream_t stream) {
  const float denominator = cpu::timestep_frequency_denominator(n, dim, p);
  const int64_t half = dim / 2;
  if (n == 0) return;
  const Frequencies f{half,
                      static_cast<float>(-std::log(static_cast<double>(p.max_period))),
                      denominator,
                      p.scale,
                      p.time_factor,
                      p.flip_sin_to_cos ? half : 0,
                      p.flip_sin_to_cos ? 0 : half};
  timestep_kernel<T>
      <<<grid_for(n * half, kThreads), kThreads, 0, stream>>>(timesteps, n, dim, f, out);
  check_launch("timestep_embedding");
}

#define EBB_INSTANTIATE(T)                                            \
  template void timestep_embedding<T>(const float*, int64_t, int64_t, \
                                      const cpu::TimestepEmbeddingParams&, T*, cudaStream_t);
EBB_INSTANTIATE(float)
EBB_INSTANTIATE(__half)
EBB_INSTANTIATE(__nv_bfloat16)
#undef EBB_INSTANTIATE

}  // namespace ebb::cuda
