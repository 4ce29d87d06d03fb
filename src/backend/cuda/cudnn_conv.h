#pragma once
// conv2d through cuDNN's convolution API (NCHW, f32 accumulation), cuDNN loaded at run time
// (cudnn_library.h). The CUDA backend uses it when asked (--cudnn) and cuDNN loads, and computes
// conv2d as im2col + GEMM otherwise.
//
// Determinism (same inputs, same bits, on every run and under every memory plan): per shape, the
// algorithm is the first of cuDNN's heuristic ranking (cudnnGetConvolutionForwardAlgorithm_v7)
// that is deterministic and whose workspace fits a fixed bound, never one timed on the device
// (cudnnFind*), and the choice is kept per shape. The workspace comes from the backend's arena
// (tag scratch) for each call, so --max-vram counts it.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "backend/arena.h"
#include "backend/cuda/im2col.h"
#include "tensor/dtype.h"

namespace ebb::cuda {

struct CudnnLibrary;

// "cuDNN 9.19.0" when libcudnn.so.9 loads, else why not ("cuDNN not loaded: ...").
bool cudnn_loaded();
std::string cudnn_description();

// x [batch, channels, height, width], w [outputs, channels, kernel_h, kernel_w], bias [outputs]
// or null, out [batch, outputs, out_h, out_w], all dense and of `dtype` (F32, F16 or BF16).
// Padding is symmetric (pad_h above and below, pad_w left and right).
struct CudnnConvArgs {
  DType dtype = DType::F16;
  int64_t batch = 0, outputs = 0;
  Im2colShape shape;  // one image's geometry; padding symmetric (pad_top, pad_left both sides)
  const void* x = nullptr;
  const void* w = nullptr;
  const void* bias = nullptr;
  void* out = nullptr;
};

class CudnnConv {
 public:
  // Computes on `stream` of the current device; F32 products use TF32 only with allow_tf32.
  // ebb::Error when cuDNN did not load or its handle cannot be made.
  CudnnConv(Arena& arena, cudaStream_t stream, bool allow_tf32, uint64_t max_workspace);
  ~CudnnConv();
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  // Enqueues the convolution onto the broadcast bias (or zero); false, with nothing enqueued, when
  // cuDNN has no deterministic algorithm for this shape within the workspace bound.
  bool run(const CudnnConvArgs& args);

 private:
  struct Plan;
  using PlanKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                             int64_t, int64_t, int, int, int>;
  Plan& plan(const CudnnConvArgs& args);

  const CudnnLibrary* lib_ = nullptr;
  Arena& arena_;
  cudaStream_t stream_;
  bool allow_tf32_;
  uint64_t max_workspace_;
  void* handle_ = nullptr;  // cudnnHandle_t
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
};

}  // namespace ebb::cuda
