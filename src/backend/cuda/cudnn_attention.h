#pragma once
// Unmasked f16/bf16 attention through cuDNN's fused scaled-dot-product attention, built with
// NVIDIA's cuDNN frontend (a header-only C++ graph API; docs/dependencies.md). cuDNN itself is
// loaded at run time (cudnn_library.h): the frontend is compiled with dynamic loading, so Ebb
// has no link-time dependency on cuDNN, and builds without this path when the frontend's
// headers were not fetched (scripts/setup). Which shapes come here is cudnn_attention_rule.h's
// decision; Ebb's flash kernel (attention.h) computes the rest and is the tests' reference.
//
// Operands keep the layout the backend hands the flash kernel ([batch, head, token, channel]
// strides, usually tokens-major with the heads interleaved): cuDNN reads them through strides,
// with no copies. The softmax statistics are f32 and none are written (inference).
//
// Determinism: per shape (dtype, dimensions, strides, scale) one graph is built, its plan being
// the first of cuDNN's heuristic ranking (mode A) that builds, never one timed on the device,
// and kept for the process. Its workspace comes from the backend's arena (tag scratch) on each
// call, so --max-vram counts it.
#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "backend/arena.h"
#include "backend/cuda/attention.h"

namespace ebb::cuda {

// Whether this build has the cuDNN path and libcudnn.so.9 loads; "cuDNN 9.19.0 fused attention
// (frontend 1.32.0)" or why not, the same text on every call.
bool cudnn_attention_loaded();
std::string cudnn_attention_description();

class CudnnAttention {
 public:
  // Computes on `stream` of the current device. ebb::Error when cuDNN attention is not
  // available (cudnn_attention_loaded) or its handle cannot be made.
  CudnnAttention(Arena& arena, cudaStream_t stream);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Enqueues the attention of `args` (as cuda_attention takes them; tiling is ignored). False,
  // with nothing enqueued, when cuDNN cannot compute the shape: no graph builds for it (said
  // once per shape on stderr, and the shape is not tried again).
  bool run(const CudaAttentionArgs& args);

 private:
  struct Graph;
  using Key =
      std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t,
                 std::tuple<int64_t, int64_t, int64_t>, std::tuple<int64_t, int64_t, int64_t>,
                 std::tuple<int64_t, int64_t, int64_t>, std::tuple<int64_t, int64_t, int64_t>,
                 float>;
  Graph& graph(const CudaAttentionArgs& args);

  Arena& arena_;
  cudaStream_t stream_;
  void* handle_ = nullptr;  // cudnnHandle_t
  std::map<Key, std::unique_ptr<Graph>> graphs_;
};

}  // namespace ebb::cuda
