#pragma once
// Every CUDA runtime and cuBLASLt call of the backend goes through these: a failed status
// becomes an ebb::Error naming the call and CUDA's own explanation.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "core/error.h"

namespace ebb::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA: {} failed: {}", what, cudaGetErrorString(status));
}

inline void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail("cuBLASLt: {} failed: {} ({})", what, cublasLtGetStatusName(status),
         cublasLtGetStatusString(status));
}

// After a kernel launch: reports a bad launch configuration at once.
inline void check_launch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

}  // namespace ebb::cuda
