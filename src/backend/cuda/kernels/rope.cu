#include <cuda_runtime.h>

#include "backend/cuda/kernels/grid_stride.cuh"
#include "backend/cuda/kernels/launch.h"
#include "backend/cuda/kernels/numeric.cuh"
#include "backend/cuda/kernels/rope.h"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxAxes = 8;

struct RopeGeometry {
  int64_t heads, tokens, pairs;
  int64_t first_step, second_offset;  // channel offsets of pair p: p·first_step, + second_offset
};

// One thread per pair of channels. x and y may be the same memory.
template <class T>
__global__ void __launch_bounds__(kThreads)
    rope_kernel(const T* x, cpu::Strides4 xs, T* y, cpu::Strides4 ys, RopeGeometry g, int64_t items,
                const float* __restrict__ cos, const float* __restrict__ sin) {
  for_each_index(items, [&](int64_t i) {
    const int64_t p = i % g.pairs, row = i / g.pairs;
    const int64_t t = row % g.tokens, bh = row / g.tokens;
    const int64_t b = bh / g.heads, h = bh % g.heads;
    const int64_t i0 = p * g.first_step, i1 = i0 + g.second_offset;
    const T* xr = x + b * xs.batch + h * xs.head + t * xs.row;
    T* yr = y + b * ys.batch + h * ys.head + t * ys.row;
    const float a = to_f32(xr[i0 * xs.col]), bv = to_f32(xr[i1 * xs.col]);
    const float c = cos[t * g.pairs + p], s = sin[t * g.pairs + p];
    // The CPU's operations in its order, each rounded (no contraction into FMAs).
    yr[i0 * ys.col] = from_f32<T>(__fsub_rn(__fmul_rn(a, c), __fmul_rn(bv, s)));
    yr[i1 * ys.col] = from_f32<T>(__fadd_rn(__fmul_rn(bv, c), __fmul_rn(a, s)));
  });
}

struct Axes {
  int count;
  int64_t dim[kMaxAxes];
};

__global__ void __launch_bounds__(kThreads)
    rope_tables_kernel(const float* __restrict__ ids, int64_t tokens, Axes axes, int64_t pairs,
                       double theta, float* __restrict__ cos_out, float* __restrict__ sin_out) {
  for_each_index(tokens * pairs, [&](int64_t i) {
    const int64_t t = i / pairs;
    int64_t k = i % pairs;
    int a = 0;
    while (k >= axes.dim[a] / 2) k -= axes.dim[a++] / 2;
    const double pos = ids[t * axes.count + a];
    const double angle =
        pos * (1.0 / pow(theta, static_cast<double>(2 * k) / static_cast<double>(axes.dim[a])));
    cos_out[i] = static_cast<float>(::cos(angle));
    sin_out[i] = static_cast<float>(::sin(angle));
  });
}

}  // namespace

template <class T>
void rope(const T* x, const cpu::Strides4& x_strides, T* y, const cpu::Strides4& y_strides,
          int64_t batch, int64_t heads, int64_t tokens, int64_t head_dim, const float* cos,
          const float* sin, RopePairs pairs, cudaStream_t stream) {
  check_sizes("rope", {batch, heads, tokens});
  if (head_dim <= 0 || head_dim % 2 != 0)
    fail("rope: head_dim {} is not a positive even number", head_dim);
  const int64_t items = batch * heads * tokens * (head_dim / 2);
  if (items == 0) return;
  const bool interleaved = pairs == RopePairs::Interleaved;
  const RopeGeometry g{heads, tokens, head_dim / 2, interleaved ? 2 : 1,
                       interleaved ? 1 : head_dim / 2};
  rope_kernel<T><<<grid_for(items, kThreads), kThreads, 0, stream>>>(x, x_strides, y, y_strides, g,
                                                                     items, cos, sin);
  check_launch("rope");
}

void rope_tables(const float* ids, int64_t tokens, const int64_t* axes_dim, int axes, double theta,
                 float* cos, float* sin, cudaStream_t stream) {
  if (axes < 0 || axes > kMaxAxes) fail("rope_tables: {} axes (at most {})", axes, kMaxAxes);
  Axes a{axes, {}};
  int64_t pairs = 0;
  for (int i = 0; i < axes; ++i) {
    if (axes_dim[i] <= 0 || axes_dim[i] % 2 != 0)
      fail("rope_tables: axis dimension {} is not a positive even number", axes_dim[i]);
    a.dim[i] = axes_dim[i];
    pairs += axes_dim[i] / 2;
  }
  check_sizes("rope_tables", {tokens});
  if (!(theta > 0.0)) fail("rope_tables: theta {} is not positive", theta);
  if (tokens == 0 || pairs == 0) return;
  rope_tables_kernel<<<grid_for(tokens * pairs, kThreads), kThreads, 0, stream>>>(
      ids, tokens, a, pairs, theta, cos, sin);
  check_launch("rope_tables");
}

#define EBB_INSTANTIATE(T)                                                                 \
  template void rope<T>(const T*, const cpu::Strides4&, T*, const cpu::Strides4&, int64_t, \
                        int64_t, int64_t, int64_t, const float*, const float*, RopePairs,  \
                        cudaStream_t);
EBB_INSTANTIATE(float)
EBB_INSTANTIATE(__half)
EBB_INSTANTIATE(__nv_bfloat16)
#undef EBB_INSTANTIATE

}  // namespace ebb::cuda
