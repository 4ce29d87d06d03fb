#include "backend/cpu/blas.h"

#include <cblas.h>

#include <climits>

#include "core/error.h"

namespace ebb::cpu {
namespace {

// OpenBLAS takes int dimensions.
int to_blas(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) fail("matrix product: {} = {} exceeds what OpenBLAS accepts", what, v);
  return static_cast<int>(v);
}

void gemm(int threads, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum; OpenBLAS rejects lda = 0
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  openblas_set_num_threads(threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, to_blas(m, "m"), to_blas(n, "n"), to_blas(k, "k"),
              1.0f, a, to_blas(lda, "lda"), b, to_blas(ldb, "ldb"), beta, c, to_blas(ldc, "ldc"));
}

}  // namespace

void gemm_a_bt(int threads, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm(threads, CblasTrans, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

void gemm_a_b(int threads, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm(threads, CblasNoTrans, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ebb::cpu
