#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstdint>

#include "backend/cuda/attention.h"
#include "backend/cuda/attention_kernel.cuh"
#include "backend/cuda/attention_plan.h"
#include "core/error.h"

namespace ebb {
namespace {

using attention_kernel::Params;
using attention_kernel::RowStrides;

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail("cuda_attention: {} failed: {}", what, cudaGetErrorString(err));
}

bool aligned_16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

RowStrides checked_strides(const void* data, const cpu::Strides4& s, const char* name) {
  if (data == nullptr) fail("cuda_attention: {} is null", name);
  if (!aligned_16(data)) fail("cuda_attention: {} is not 16-byte aligned", name);
  if (s.col != 1) fail("cuda_attention: {} channel stride is {}, must be 1", name, s.col);
  if (s.batch % 8 != 0 || s.head % 8 != 0 || s.row % 8 != 0)
    fail("cuda_attention: {} strides (batch {}, head {}, row {}) must be multiples of 8 elements",
         name, s.batch, s.head, s.row);
  return {s.batch, s.head, s.row};
}

Params checked_params(const CudaAttentionArgs& a) {
  attention_plan::check_shape(a);
  Params p;
  p.q_strides = checked_strides(a.q, a.q_strides, "q");
  p.k_strides = checked_strides(a.k, a.k_strides, "k");
  p.v_strides = checked_strides(a.v, a.v_strides, "v");
  p.out_strides = checked_strides(a.out, a.out_strides, "out");
  p.q = static_cast<const uint16_t*>(a.q);
  p.k = static_cast<const uint16_t*>(a.k);
  p.v = static_cast<const uint16_t*>(a.v);
  p.out = static_cast<uint16_t*>(a.out);
  p.q_len = static_cast<int>(a.q_len);
  p.kv_len = static_cast<int>(a.kv_len);
  const float scale = a.scale ? *a.scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
  // The softmax runs in base 2: e^(x·scale) = 2^(x·scale·log2 e).
  p.scale_log2 = scale * 1.44269504088896341f;
  return p;
}

int current_device() {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  return device;
}

// One kernel, as the launcher sees it.
struct Kernel {
  void (*function)(Params);
  size_t shared_bytes;
  int block_rows;  // with the plan's warps per block
};

// Above 48 KB a block's shared memory must be asked for, once per kernel and device; a device
// with less than the kernel needs refuses.
template <bool kBf16, int kHeadDim, int kRowTiles>
Kernel prepared_kernel(int block_warps, int device) {
  using L = attention_tiling::Layout<kHeadDim, kRowTiles>;
  auto* const function = attention_kernel::flash_attention<kBf16, kHeadDim, kRowTiles>;
  static std::atomic<uint64_t> prepared_devices{0};
  const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
  if (bit == 0 || (prepared_devices.load(std::memory_order_relaxed) & bit) == 0) {
    const cudaError_t err = cudaFuncSetAttribute(
        function, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(L::kSharedBytes));
    if (err != cudaSuccess)
      fail("cuda_attention: head_dim {} needs {} bytes of shared memory per block: {}", kHeadDim,
           L::kSharedBytes, cudaGetErrorString(err));
    prepared_devices.fetch_or(bit, std::memory_order_relaxed);
  }
  return {function, L::kSharedBytes, block_warps / L::kDimSplit * L::kWarpRows};
}

// `plan` must have passed check_plan.
Kernel kernel_for(const CudaAttentionArgs& a, const CudaAttentionPlan& plan, int device) {
  Kernel kernel{};
  attention_plan::HeadDims::visit(a.head_dim, [&](auto dim) {
    constexpr int kHeadDim = decltype(dim)::value;
    attention_plan::visit_row_tiles<kHeadDim>(plan.warp_rows, [&](auto row_tiles) {
      constexpr int kRowTiles = decltype(row_tiles)::value;
      kernel = a.dtype == DType::BF16
                   ? prepared_kernel<true, kHeadDim, kRowTiles>(plan.block_warps, device)
                   : prepared_kernel<false, kHeadDim, kRowTiles>(plan.block_warps, device);
    });
  });
  return kernel;
}

dim3 grid_of(const CudaAttentionArgs& a, const Kernel& kernel) {
  return dim3(static_cast<unsigned>((a.q_len + kernel.block_rows - 1) / kernel.block_rows),
              static_cast<unsigned>(a.heads), static_cast<unsigned>(a.batch));
}

void launch(const CudaAttentionArgs& a, const Params& p, const CudaAttentionPlan& plan,
            cudaStream_t stream) {
  const Kernel kernel = kernel_for(a, plan, current_device());
  kernel.function<<<grid_of(a, kernel), 32 * plan.block_warps, kernel.shared_bytes, stream>>>(p);
  check_cuda(cudaGetLastError(), "kernel launch");
}

bool empty(const CudaAttentionArgs& a) {
  return a.batch == 0 || a.heads == 0 || a.q_len == 0;
}

}  // namespace

void cuda_attention(const CudaAttentionArgs& a, const CudaAttentionPlan& plan,
                    cudaStream_t stream) {
  const Params p = checked_params(a);
  attention_plan::check_plan(a.head_dim, plan);
  if (!empty(a)) launch(a, p, plan, stream);
}

void cuda_attention(const CudaAttentionArgs& a, cudaStream_t stream) {
  const Params p = checked_params(a);
  if (empty(a)) return;
  int multiprocessors = 0;
  check_cuda(
      cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, current_device()),
      "cudaDeviceGetAttribute");
  launch(a, p, cuda_attention_default_plan(a, multiprocessors), stream);
}

std::string cuda_attention_describe(const CudaAttentionArgs& a, const CudaAttentionPlan& plan) {
  checked_params(a);
  attention_plan::check_plan(a.head_dim, plan);
  const Kernel kernel = kernel_for(a, plan, current_device());
  cudaFuncAttributes attributes;
  check_cuda(cudaFuncGetAttributes(&attributes, kernel.function), "cudaFuncGetAttributes");
  int resident = 0;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                 &resident, kernel.function, 32 * plan.block_warps, kernel.shared_bytes),
             "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  const dim3 grid = grid_of(a, kernel);
  return fmt::format(
      "{} rows/warp, {} warps/block ({} rows), {} blocks, {} resident/SM, {} regs, {} B local, "
      "{} KB shared",
      plan.warp_rows, plan.block_warps, kernel.block_rows, int64_t{grid.x} * grid.y * grid.z,
      resident, attributes.numRegs, attributes.localSizeBytes, (kernel.shared_bytes + 1023) / 1024);
}

}  // namespace ebb
