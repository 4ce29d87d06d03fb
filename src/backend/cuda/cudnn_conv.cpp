#include "backend/cuda/cudnn_conv.h"

#include "core/error.h"

#if __has_include(<cudnn.h>)

#include <algorithm>
#include <vector>

#include "backend/cuda/cudnn_library.h"
#include "backend/cuda/im2col.h"

namespace ebb::cuda {
namespace {

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDNN_DATA_FLOAT;
    case DType::F16:
      return CUDNN_DATA_HALF;
    case DType::BF16:
      return CUDNN_DATA_BFLOAT16;
    default:
      fail("cuDNN conv2d: {} is not F32, F16 or BF16", dtype_name(t));
  }
}

const CudnnLibrary& loaded_library() {
  std::string why_not;
  const CudnnLibrary* lib = cudnn_library(why_not);
  if (!lib) fail("cuDNN is not loaded: {}", why_not);
  return *lib;
}

int narrow(int64_t v) {
  if (v > INT32_MAX) fail("cuDNN conv2d: dimension {} exceeds cuDNN's int range", v);
  return static_cast<int>(v);
}

}  // namespace

bool cudnn_loaded() {
  std::string why_not;
  return cudnn_library(why_not) != nullptr;
}

std::string cudnn_description() {
  std::string why_not;
  const CudnnLibrary* lib = cudnn_library(why_not);
  return lib ? "cuDNN " + lib->version : "cuDNN not loaded: " + why_not;
}

struct CudnnConv::Plan {
  const CudnnLibrary* lib = nullptr;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool usable = false;  // a deterministic algorithm fits the workspace bound
  cudnnConvolutionFwdAlgo_t algo{};
  size_t workspace = 0;

  ~Plan() {
    // Destroying descriptors frees host memory only; there is nothing to report.
    if (x) lib->cudnnDestroyTensorDescriptor(x);
    if (y) lib->cudnnDestroyTensorDescriptor(y);
    if (w) lib->cudnnDestroyFilterDescriptor(w);
    if (conv) lib->cudnnDestroyConvolutionDescriptor(conv);
  }
};

CudnnConv::CudnnConv(Arena& arena, cudaStream_t stream, bool allow_tf32, uint64_t max_workspace)
    : lib_(&loaded_library()),
      arena_(arena),
      stream_(stream),
      allow_tf32_(allow_tf32),
      max_workspace_(max_workspace) {
  cudnnHandle_t handle = nullptr;
  check(*lib_, lib_->cudnnCreate(&handle), "cudnnCreate");
  handle_ = handle;
  check(*lib_, lib_->cudnnSetStream(handle, stream), "cudnnSetStream");
}

CudnnConv::~CudnnConv() {
  plans_.clear();
  // A destructor cannot report; the handle's device state goes with the context regardless.
  lib_->cudnnDestroy(static_cast<cudnnHandle_t>(handle_));
}

CudnnConv::Plan& CudnnConv::plan(const CudnnConvArgs& a) {
  const PlanKey key{static_cast<int>(a.dtype),
                    a.batch,
                    a.shape.channels,
                    a.shape.height,
                    a.shape.width,
                    a.outputs,
                    a.shape.kernel_h,
                    a.shape.kernel_w,
                    a.shape.out_h,
                    a.shape.out_w,
                    a.shape.stride,
                    a.shape.pad_top,
                    a.shape.pad_left};
  std::unique_ptr<Plan>& slot = plans_[key];
  if (slot) return *slot;

  auto p = std::make_unique<Plan>();
  p->lib = lib_;
  const CudnnLibrary& l = *lib_;
  const cudnnDataType_t t = cudnn_type(a.dtype);
  check(l, l.cudnnCreateTensorDescriptor(&p->x), "cudnnCreateTensorDescriptor");
  check(l, l.cudnnCreateTensorDescriptor(&p->y), "cudnnCreateTensorDescriptor");
  check(l, l.cudnnCreateFilterDescriptor(&p->w), "cudnnCreateFilterDescriptor");
  check(l, l.cudnnCreateConvolutionDescriptor(&p->conv), "cudnnCreateConvolutionDescriptor");
  check(l,
        l.cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, t, narrow(a.batch),
                                     narrow(a.shape.channels), narrow(a.shape.height),
                                     narrow(a.shape.width)),
        "cudnnSetTensor4dDescriptor (x)");
  check(l,
        l.cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, t, narrow(a.batch), narrow(a.outputs),
                                     narrow(a.shape.out_h), narrow(a.shape.out_w)),
        "cudnnSetTensor4dDescriptor (out)");
  check(l,
        l.cudnnSetFilter4dDescriptor(p->w, t, CUDNN_TENSOR_NCHW, narrow(a.outputs),
                                     narrow(a.shape.channels), narrow(a.shape.kernel_h),
                                     narrow(a.shape.kernel_w)),
        "cudnnSetFilter4dDescriptor");
  // PyTorch's conv2d is a cross-correlation; products accumulate in f32 for every dtype.
  check(l,
        l.cudnnSetConvolution2dDescriptor(p->conv, a.shape.pad_top, a.shape.pad_left,
                                          a.shape.stride, a.shape.stride, 1, 1,
                                          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
        "cudnnSetConvolution2dDescriptor");
  // F32 without TF32 must stay on FMA kernels; the default math lets F32 use TF32.
  const bool fma_only = a.dtype == DType::F32 && !allow_tf32_;
  const cudnnMathType_t math = fma_only                ? CUDNN_FMA_MATH
                               : a.dtype == DType::F32 ? CUDNN_DEFAULT_MATH
                                                       : CUDNN_TENSOR_OP_MATH;
  check(l, l.cudnnSetConvolutionMathType(p->conv, math), "cudnnSetConvolutionMathType");

  const auto handle = static_cast<cudnnHandle_t>(handle_);
  int max_count = 0;
  check(l, l.cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &max_count),
        "cudnnGetConvolutionForwardAlgorithmMaxCount");
  std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(static_cast<size_t>(std::max(max_count, 1)));
  int returned = 0;
  check(l,
        l.cudnnGetConvolutionForwardAlgorithm_v7(handle, p->x, p->w, p->conv, p->y,
                                                 static_cast<int>(ranked.size()), &returned,
                                                 ranked.data()),
        "cudnnGetConvolutionForwardAlgorithm_v7");
  for (int i = 0; i < returned; ++i) {
    const cudnnConvolutionFwdAlgoPerf_t& r = ranked[static_cast<size_t>(i)];
    if (r.status != CUDNN_STATUS_SUCCESS || r.determinism != CUDNN_DETERMINISTIC ||
        (fma_only && r.mathType != CUDNN_FMA_MATH))
      continue;
    check(l, l.cudnnSetConvolutionMathType(p->conv, r.mathType), "cudnnSetConvolutionMathType");
    size_t workspace = 0;
    if (l.cudnnGetConvolutionForwardWorkspaceSize(handle, p->x, p->w, p->conv, p->y, r.algo,
                                                  &workspace) != CUDNN_STATUS_SUCCESS ||
        workspace > max_workspace_)
      continue;
    p->usable = true;
    p->algo = r.algo;
    p->workspace = workspace;
    break;
  }
  slot = std::move(p);
  return *slot;
}

bool CudnnConv::run(const CudnnConvArgs& a) {
  Plan& p = plan(a);
  if (!p.usable) return false;
  const CudnnLibrary& l = *lib_;
  const auto handle = static_cast<cudnnHandle_t>(handle_);
  // Freed on return while the convolution may still run: later users of the block are enqueued
  // on the same stream, after it.
  const std::shared_ptr<Storage> workspace =
      p.workspace ? arena_.allocate(p.workspace, MemoryTag::Scratch, "cuDNN conv2d workspace")
                  : nullptr;
  // The bias is laid out in the output first and the convolution accumulates onto it (beta 1):
  // one pass fewer over the output than adding it afterwards (cudnnAddTensor).
  if (a.bias) {
    const uint64_t image = static_cast<uint64_t>(a.outputs * a.shape.out_h * a.shape.out_w);
    for (int64_t n = 0; n < a.batch; ++n)
      broadcast_rows(a.dtype, a.bias,
                     static_cast<std::byte*>(a.out) + n * image * dtype_info(a.dtype).block_bytes,
                     a.outputs, a.shape.out_h * a.shape.out_w, stream_);
  }
  const float one = 1.0f, beta = a.bias ? 1.0f : 0.0f;
  check(l,
        l.cudnnConvolutionForward(handle, &one, p.x, a.x, p.w, a.w, p.conv, p.algo,
                                  workspace ? workspace->data() : nullptr, p.workspace, &beta, p.y,
                                  a.out),
        "cudnnConvolutionForward");
  return true;
}

}  // namespace ebb::cuda

#else

namespace ebb::cuda {

struct CudnnConv::Plan {};

bool cudnn_loaded() {
  return false;
}

std::string cudnn_description() {
  return "cuDNN not loaded: this ebb was built without cuDNN's headers";
}

CudnnConv::CudnnConv(Arena& arena, cudaStream_t stream, bool allow_tf32, uint64_t max_workspace)
    : arena_(arena), stream_(stream), allow_tf32_(allow_tf32), max_workspace_(max_workspace) {
  fail("{}", cudnn_description());
}

CudnnConv::~CudnnConv() = default;

bool CudnnConv::run(const CudnnConvArgs&) {
  return false;
}

}  // namespace ebb::cuda

#endif
