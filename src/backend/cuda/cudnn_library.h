#pragma once
// cuDNN's entry points, loaded at run time: Ebb never links against cuDNN, so it builds and runs
// where cuDNN is absent (the backend then computes conv2d as im2col + GEMM). libcudnn.so.9 is
// opened once per process with dlopen, on the loader's search path (LD_LIBRARY_PATH); it is never
// closed. cudnn.h supplies only types and constants here. Include only where
// __has_include(<cudnn.h>) holds.
#include <cudnn.h>

#include <string>

namespace ebb::cuda {

// Every function Ebb calls, each a pointer of the function's own type.
#define EBB_CUDNN_FUNCTIONS(X)                   \
  X(cudnnGetVersion)                             \
  X(cudnnGetErrorString)                         \
  X(cudnnCreate)                                 \
  X(cudnnDestroy)                                \
  X(cudnnSetStream)                              \
  X(cudnnCreateTensorDescriptor)                 \
  X(cudnnSetTensor4dDescriptor)                  \
  X(cudnnDestroyTensorDescriptor)                \
  X(cudnnCreateFilterDescriptor)                 \
  X(cudnnSetFilter4dDescriptor)                  \
  X(cudnnDestroyFilterDescriptor)                \
  X(cudnnCreateConvolutionDescriptor)            \
  X(cudnnSetConvolution2dDescriptor)             \
  X(cudnnSetConvolutionMathType)                 \
  X(cudnnDestroyConvolutionDescriptor)           \
  X(cudnnGetConvolutionForwardAlgorithmMaxCount) \
  X(cudnnGetConvolutionForwardAlgorithm_v7)      \
  X(cudnnGetConvolutionForwardWorkspaceSize)     \
  X(cudnnConvolutionForward)

struct CudnnLibrary {
#define EBB_CUDNN_MEMBER(name) decltype(&::name) name = nullptr;
  EBB_CUDNN_FUNCTIONS(EBB_CUDNN_MEMBER)
#undef EBB_CUDNN_MEMBER
  std::string version;  // "9.19.0"
};

// The loaded library, or null when libcudnn.so.9 is missing, lacks a function or is not
// major version 9; `why_not` then says which (the same text on every call).
const CudnnLibrary* cudnn_library(std::string& why_not);

// ebb::Error naming the call and cuDNN's explanation for a failed status.
void check(const CudnnLibrary& lib, cudnnStatus_t status, const char* what);

}  // namespace ebb::cuda
