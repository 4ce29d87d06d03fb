#pragma once
// Matrix products on cuBLASLt, in its column-major terms:
//
//   D[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + bias[m] (per row of D) + beta · D
//
// A and B are F32, F16 or BF16 (the same); D is that type or F32. Products accumulate in f32;
// F32 operands never use TF32 unless the GEMM was made with allow_tf32. A plan (descriptors
// and the heuristic's algorithm) is kept per shape, types and pointer alignment, so a
// denoising loop asks the heuristic once per distinct product.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "backend/arena.h"
#include "tensor/dtype.h"

namespace ebb::cuda {

struct GemmArgs {
  DType ab_type = DType::F16;
  DType d_type = DType::F16;
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;
  int64_t lda = 0;
  const void* b = nullptr;
  int64_t ldb = 0;
  void* d = nullptr;
  int64_t ldd = 0;
  const void* bias = nullptr;  // [m] of d_type, or null
  float alpha = 1.0f, beta = 0.0f;
  // Strided batches: `batch` products, the operands `stride_*` elements apart.
  int batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_d = 0;
};

class CublasLtGemm {
 public:
  // The workspace comes from `arena` (tag scratch) and stays for the GEMM's lifetime.
  CublasLtGemm(Arena& arena, bool allow_tf32);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // Enqueues on `stream`; ebb::Error when cuBLASLt has no algorithm for the product.
  void run(const GemmArgs& args, cudaStream_t stream);

 private:
  struct Plan;
  // Every field of GemmArgs but the pointers, plus the pointers' alignments.
  using PlanKey =
      std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool,
                 bool, int, int64_t, int64_t, int64_t, int, int, int, int>;
  Plan& plan(const GemmArgs& args);

  bool allow_tf32_;
  void* handle_ = nullptr;  // cublasLtHandle_t
  std::shared_ptr<Storage> workspace_;
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
};

}  // namespace ebb::cuda
