#pragma once
// Row-major f32 matrix products through OpenBLAS (pthread build). Each call first sets
// OpenBLAS's thread count to the caller's, so its split of the work, and hence every result,
// depends only on that count.
#include <cstdint>

namespace ebb::cpu {

// C[m, n] = A[m, k] · B[n, k]ᵀ + beta · C  (B as PyTorch stores linear weights)
void gemm_a_bt(int threads, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// C[m, n] = A[m, k] · B[k, n] + beta · C
void gemm_a_b(int threads, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace ebb::cpu
