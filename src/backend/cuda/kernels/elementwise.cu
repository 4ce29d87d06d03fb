#include <cuda_runtime.h>

#include <vector>

#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/kernels/grid_stride.cuh"
#include "backend/cuda/kernels/launch.h"
#include "backend/cuda/kernels/numeric.cuh"
#include "backend/cuda/kernels/strided_index.cuh"

namespace ebb::cuda {
namespace {

constexpr int kThreads = 256;

// Operands of the shape: 0 out (dense), 1 a, 2 b.
template <class T, ElementwiseOp kOp>
__global__ void __launch_bounds__(kThreads)
    elementwise_kernel(const T* a, const T* b, T* out, StridedShape<3> s, int64_t rows) {
  constexpr int V = kVec<T>;
  const int inner = s.rank - 1;
  const int64_t len = s.size[inner];
  const int64_t chunks_per_row = (len + V - 1) / V;
  const int64_t chunks = rows * chunks_per_row;
  for_each_index(chunks, [&](int64_t i) {
    int64_t row, col;
    divmod(i, chunks_per_row, row, col);
    col *= V;
    const int n = chunk_len<T>(len - col);
    int64_t off[3];
    row_offsets(s, row, off);
    float u[V], v[V];
    load_strided_f32(a + off[1] + col * s.stride[1][inner], s.stride[1][inner], n, u);
    load_strided_f32(b + off[2] + col * s.stride[2][inner], s.stride[2][inner], n, v);
#pragma unroll
    for (int k = 0; k < V; ++k) u[k] = kOp == ElementwiseOp::Add ? u[k] + v[k] : u[k] * v[k];
    store_f32(out + row * len + col, n, u);
  });
}

}  // namespace

template <class T>
void elementwise(ElementwiseOp op, const T* a, const int64_t* a_strides, const T* b,
                 const int64_t* b_strides, T* out, const int64_t* sizes, int rank,
                 cudaStream_t stream) {
  if (rank < 0) fail("elementwise: negative rank {}", rank);
  // out's dense strides, so that merging keeps out dense.
  std::vector<int64_t> out_strides(rank);
  int64_t dense = 1;
  for (int d = rank - 1; d >= 0; --d) {
    out_strides[d] = dense;
    dense *= sizes[d];
  }
  const StridedShape<3> s = with_inner_dim(
      collapse_dims<3>("elementwise", sizes, {out_strides.data(), a_strides, b_strides}, rank));
  if (s.elements() == 0) return;
  const int64_t len = s.size[s.rank - 1];
  const int64_t rows = s.elements() / len;
  const unsigned grid = grid_for(rows * ((len + kVec<T> - 1) / kVec<T>), kThreads);
  if (op == ElementwiseOp::Add)
    elementwise_kernel<T, ElementwiseOp::Add><<<grid, kThreads, 0, stream>>>(a, b, out, s, rows);
  else
    elementwise_kernel<T, ElementwiseOp::Mul><<<grid, kThreads, 0, stream>>>(a, b, out, s, rows);
  check_launch("elementwise");
}

#define EBB_INSTANTIATE(T)                                                                        \
  template void elementwise<T>(ElementwiseOp, const T*, const int64_t*, const T*, const int64_t*, \
                               T*, const int64_t*, int, cudaStream_t);
EBB_INSTANTIATE(float)
EBB_INSTANTIATE(__half)
EBB_INSTANTIATE(__nv_bfloat16)
#undef EBB_INSTANTIATE

}  // namespace ebb::cuda
