#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "backend/cuda/kernels/launch.h"
#include "backend/cuda/kernels/norms.h"
#include "backend/cuda/kernels/numeric.cuh"

namespace ebb::cuda {
namespace {

namespace cg = cooperative_groups;

// In the kernels below x and out may be the same memory, so neither is __restrict__.

// Sums of (x - shift) and (x - shift)² over a set: with the shift near the mean (any element
// is), the variance s2/n - (s1/n)² does not cancel catastrophically in f32.
struct ShiftedSums {
  float s1 = 0.0f, s2 = 0.0f;
  __device__ void add(float v, float shift) {
    const float d = v - shift;
    s1 += d;
    s2 += d * d;
  }
};

struct Moments {
  float mean, rstd;
};

__device__ __forceinline__ Moments moments(float s1, float s2, float shift, int64_t n, float eps) {
  const float inv_n = 1.0f / static_cast<float>(n);
  const float m1 = s1 * inv_n;
  const float var = fmaxf(s2 * inv_n - m1 * m1, 0.0f);
  return {shift + m1, 1.0f / sqrtf(var + eps)};
}

// A group is `rows` runs of `len` contiguous elements, `row_stride` apart: NCHW, its channels
// (a run is a channel's s pixels); channels-last, its pixels (a run is the group's channels
// of one pixel). Work items are 16-byte chunks of runs, so loads are vectorised whenever runs
// keep 16-byte alignment.
struct GroupGeometry {
  int64_t c, s, groups;
  int64_t rows, len, row_stride;
  __device__ int64_t group_offset(int64_t n, int64_t g, bool channels_last) const {
    const int64_t cpg = c / groups;
    return channels_last ? n * s * c + g * cpg : (n * c + g * cpg) * s;
  }
};

constexpr int kGroupThreads = 512;
// Blocks that share one group form a thread block cluster of at most this many (the portable
// cluster size), which sum their partial statistics through distributed shared memory.
constexpr int kMaxSplit = 8;

// One group per cluster of `split` blocks (blockIdx.x = group · split + part), each block
// taking a contiguous share of the group's chunks.
template <class T, bool kChannelsLast>
__global__ void __launch_bounds__(kGroupThreads)
    group_norm_kernel(const T* x, const T* __restrict__ gamma, const T* __restrict__ beta, T* out,
                      GroupGeometry geo, float eps, int split) {
  __shared__ float shared[32];
  constexpr int V = kVec<T>;
  const int64_t group = blockIdx.x / split, part = blockIdx.x % split;
  const int64_t n = group / geo.groups, g = group % geo.groups;
  const int64_t base = geo.group_offset(n, g, kChannelsLast);
  const int64_t chunks_per_row = (geo.len + V - 1) / V;
  const int64_t chunks = geo.rows * chunks_per_row;
  const int64_t begin = chunks * part / split, end = chunks * (part + 1) / split;
  // Every block of the group shifts by the same element, so their sums add up.
  const float shift = to_f32(x[base]);

  ShiftedSums sums;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int64_t row = i / chunks_per_row, col = (i % chunks_per_row) * V;
    const int count = chunk_len<T>(geo.len - col);
    float v[V];
    load_f32(x + base + row * geo.row_stride + col, count, v);
#pragma unroll
    for (int k = 0; k < V; ++k)
      if (k < count) sums.add(v[k], shift);
  }
  float s1 = block_sum(sums.s1, shared);
  float s2 = block_sum(sums.s2, shared);
#if __CUDA_ARCH__ >= 900
  if (split > 1) {
    __shared__ float2 partial;
    if (threadIdx.x == 0) partial = make_float2(s1, s2);
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();
    s1 = s2 = 0.0f;
    for (int r = 0; r < split; ++r) {
      const float2 p = *cluster.map_shared_rank(&partial, r);
      s1 += p.x;
      s2 += p.y;
    }
    // No block may exit while another still reads its partial.
    cluster.sync();
  }
#endif
  const Moments m = moments(s1, s2, shift, geo.rows * geo.len, eps);

  const int64_t first_channel = g * (geo.c / geo.groups);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int64_t row = i / chunks_per_row, col = (i % chunks_per_row) * V;
    const int count = chunk_len<T>(geo.len - col);
    const int64_t at = base + row * geo.row_stride + col;
    float v[V];
    load_f32(x + at, count, v);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      if (k >= count) continue;
      const int64_t ch = first_channel + (kChannelsLast ? col + k : row);
      const float scale = m.rstd * (gamma ? to_f32(gamma[ch]) : 1.0f);
      v[k] = (v[k] - m.mean) * scale + (beta ? to_f32(beta[ch]) : 0.0f);
    }
    store_f32(out + at, count, v);
  }
}

void check_group_shape(const char* op, int64_t n, int64_t c, int64_t s, int64_t groups) {
  check_sizes(op, {n, c, s});
  if (groups <= 0 || c % groups != 0)
    fail("{}: {} channels do not split into {} groups", op, c, groups);
  if (n * groups * kMaxSplit > 0x7FFFFFFF)
    fail("{}: {} groups of {} batches is too many", op, groups, n);
}

// Blocks per group: enough for a block per SM when groups are few, as long as each thread
// keeps two chunks or more. Clusters need compute capability 9.
int group_split(int64_t groups, int64_t chunks, int threads, const char* op) {
  int device = 0, major = 0, sms = 0;
  check_cuda(cudaGetDevice(&device), op);
  check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), op);
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), op);
  if (major < 9) return 1;
  int split = 1;
  while (split < kMaxSplit && groups * split < sms && chunks / (2 * split) >= 2 * threads)
    split *= 2;
  return split;
}

template <class T, bool kChannelsLast>
void launch_group_norm(const char* op, const T* x, const T* gamma, const T* beta, T* out, int64_t n,
                       int64_t c, int64_t s, int64_t groups, float eps, cudaStream_t stream) {
  check_group_shape(op, n, c, s, groups);
  const int64_t cpg = c / groups;
  if (n == 0 || cpg == 0 || s == 0) return;
  const GroupGeometry geo = kChannelsLast ? GroupGeometry{c, s, groups, s, cpg, c}
                                          : GroupGeometry{c, s, groups, cpg, s, s};
  // Small groups leave most of a large block idle.
  const int threads = cpg * s >= 32 * kGroupThreads ? kGroupThreads : 256;
  const int64_t chunks = geo.rows * ((geo.len + kVec<T> - 1) / kVec<T>);
  const int split = group_split(n * groups, chunks, threads, op);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(n * groups * split));
  config.blockDim = dim3(threads);
  config.stream = stream;
  cudaLaunchAttribute cluster;
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = split;
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  if (split > 1) {
    config.attrs = &cluster;
    config.numAttrs = 1;
  }
  check_cuda(cudaLaunchKernelEx(&config, group_norm_kernel<T, kChannelsLast>, x, gamma, beta, out,
                                geo, eps, split),
             op);
}

// Rows of [rows, d] go to teams of kTeam threads: a warp per row when rows are many, the
// whole block when they are few and long.
constexpr int kRowThreads = 256;

template <int kTeam>
__device__ __forceinline__ float team_sum(float v, float* shared) {
  if constexpr (kTeam == 32) {
    return warp_sum(v);
  } else {
    return block_sum(v, shared);
  }
}

template <class T, int kTeam, bool kRms>
__global__ void __launch_bounds__(kRowThreads)
    row_norm_kernel(const T* x, const T* __restrict__ gamma, const T* __restrict__ beta, T* out,
                    int64_t rows, int64_t d, float eps) {
  __shared__ float shared[32];
  constexpr int V = kVec<T>;
  const int64_t chunks = (d + V - 1) / V;
  for_each_team_row<kTeam, kRowThreads>(rows, [&](int64_t r, bool active, int lane) {
    const T* xr = x + r * d;
    const float shift = active && !kRms ? to_f32(xr[0]) : 0.0f;
    ShiftedSums sums;
    for (int64_t i = lane; active && i < chunks; i += kTeam) {
      const int count = chunk_len<T>(d - i * V);
      float v[V];
      load_f32(xr + i * V, count, v);
#pragma unroll
      for (int k = 0; k < V; ++k)
        if (k < count) sums.add(v[k], shift);
    }
    const float s2 = team_sum<kTeam>(sums.s2, shared);
    Moments m;
    if constexpr (kRms) {
      m = {0.0f, 1.0f / sqrtf(s2 / static_cast<float>(d) + eps)};
    } else {
      m = moments(team_sum<kTeam>(sums.s1, shared), s2, shift, d, eps);
    }
    for (int64_t i = lane; active && i < chunks; i += kTeam) {
      const int count = chunk_len<T>(d - i * V);
      float v[V];
      load_f32(xr + i * V, count, v);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        if (k >= count) continue;
        const int64_t col = i * V + k;
        v[k] = (v[k] - m.mean) * m.rstd;
        if (gamma) v[k] *= to_f32(gamma[col]);
        if (beta) v[k] += to_f32(beta[col]);
      }
      store_f32(out + r * d + i * V, count, v);
    }
  });
}

template <class T, bool kRms>
void launch_row_norm(const char* op, const T* x, const T* gamma, const T* beta, T* out,
                     int64_t rows, int64_t d, float eps, cudaStream_t stream) {
  check_sizes(op, {rows, d});
  if (rows == 0 || d == 0) return;
  if (d <= 4096 && rows >= 1024) {
    row_norm_kernel<T, 32, kRms><<<grid_for(rows, kRowThreads / 32), kRowThreads, 0, stream>>>(
        x, gamma, beta, out, rows, d, eps);
  } else {
    row_norm_kernel<T, kRowThreads, kRms>
        <<<grid_for(rows, 1), kRowThreads, 0, stream>>>(x, gamma, beta, out, rows, d, eps);
  }
  check_launch(op);
}

}  // namespace

template <class T>
void group_norm(const T* x, const T* gamma, const T* beta, T* out, int64_t n, int64_t c, int64_t s,
                int64_t groups, float eps, cudaStream_t stream) {
  launch_group_norm<T, false>("group_norm", x, gamma, beta, out, n, c, s, groups, eps, stream);
}

template <class T>
void group_norm_channels_last(const T* x, const T* gamma, const T* beta, T* out, int64_t n,
                              int64_t c, int64_t s, int64_t groups, float eps,
                              cudaStream_t stream) {
  launch_group_norm<T, true>("group_norm (channels last)", x, gamma, beta, out, n, c, s, groups,
                             eps, stream);
}

template <class T>
void layer_norm(const T* x, const T* gamma, const T* beta, T* out, int64_t rows, int64_t d,
                float eps, cudaStream_t stream) {
  launch_row_norm<T, false>("layer_norm", x, gamma, beta, out, rows, d, eps, stream);
}

template <class T>
void rms_norm(const T* x, const T* gamma, T* out, int64_t rows, int64_t d, float eps,
              cudaStream_t stream) {
  launch_row_norm<T, true>("rms_norm", x, gamma, static_cast<const T*>(nullptr), out, rows, d, eps,
                           stream);
}

#define EBB_INSTANTIATE(T)                                                                      \
  template void group_norm<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t,      \
                              int64_t, float, cudaStream_t);                                    \
  template void group_norm_channels_last<T>(const T*, const T*, const T*, T*, int64_t, int64_t, \
                                            int64_t, int64_t, float, cudaStream_t);             \
  template void layer_norm<T>(const T*, const T*, const T*, T*, int64_t, int64_t, float,        \
                              cudaStream_t);                                                    \
  template void rms_norm<T>(const T*, const T*, T*, int64_t, int64_t, float, cudaStream_t);
EBB_INSTANTIATE(float)
EBB_INSTANTIATE(__half)
EBB_INSTANTIATE(__nv_bfloat16)
#undef EBB_INSTANTIATE

}  // namespace ebb::cuda
