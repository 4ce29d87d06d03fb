#include <cublasLt.h>

#include <algorithm>

#include "backend/cuda/cublaslt_gemm.h"
#include "backend/cuda/cuda_check.h"

namespace ebb::cuda {
namespace {

// cuBLASLt's recommendation for Hopper.
constexpr uint64_t kWorkspaceBytes = uint64_t(32) << 20;

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::F16:
      return CUDA_R_16F;
    case DType::BF16:
      return CUDA_R_16BF;
    default:
      fail("GEMM: {} is not F32, F16 or BF16", dtype_name(t));
  }
}

// The largest power of two up to 256 dividing the address: what the heuristic may assume.
int alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  return address == 0 ? 256 : static_cast<int>(std::min<uintptr_t>(256, address & -address));
}

template <typename T>
void set(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value) {
  check(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)),
        "cublasLtMatmulDescSetAttribute");
}

cublasLtMatrixLayout_t make_layout(DType t, int64_t rows, int64_t cols, int64_t ld, int batch,
                                   int64_t stride) {
  cublasLtMatrixLayout_t layout = nullptr;
  check(cublasLtMatrixLayoutCreate(&layout, cuda_type(t), static_cast<uint64_t>(rows),
                                   static_cast<uint64_t>(cols), ld),
        "cublasLtMatrixLayoutCreate");
  if (batch > 1) {
    const int32_t count = batch;
    check(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                           sizeof(count)),
          "cublasLtMatrixLayoutSetAttribute");
    check(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                           &stride, sizeof(stride)),
          "cublasLtMatrixLayoutSetAttribute");
  }
  return layout;
}

}  // namespace

struct CublasLtGemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};

  ~Plan() {
    // Destroying descriptors only frees host memory; there is nothing to report.
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

CublasLtGemm::CublasLtGemm(Arena& arena, bool allow_tf32) : allow_tf32_(allow_tf32) {
  cublasLtHandle_t handle = nullptr;
  check(cublasLtCreate(&handle), "cublasLtCreate");
  handle_ = handle;
  workspace_ = arena.allocate(kWorkspaceBytes, MemoryTag::Scratch, "cuBLASLt workspace");
}

CublasLtGemm::~CublasLtGemm() {
  plans_.clear();
  // A destructor cannot report; destroying the handle frees host state only.
  cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

CublasLtGemm::Plan& CublasLtGemm::plan(const GemmArgs& g) {
  const int align_a = alignment(g.a), align_b = alignment(g.b), align_d = alignment(g.d);
  const PlanKey key{static_cast<int>(g.ab_type),
                    static_cast<int>(g.d_type),
                    g.trans_a,
                    g.trans_b,
                    g.m,
                    g.n,
                    g.k,
                    g.lda,
                    g.ldb,
                    g.ldd,
                    g.bias != nullptr,
                    g.beta != 0.0f,
                    g.batch,
                    g.stride_a,
                    g.stride_b,
                    g.stride_d,
                    align_a,
                    align_b,
                    align_d,
                    g.bias ? alignment(g.bias) : 256};
  std::unique_ptr<Plan>& slot = plans_[key];
  if (slot) return *slot;

  auto p = std::make_unique<Plan>();
  const cublasComputeType_t compute =
      g.ab_type == DType::F32 && allow_tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  check(cublasLtMatmulDescCreate(&p->desc, compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
  set(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N);
  set(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N);
  if (g.bias) set(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
  p->a = make_layout(g.ab_type, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda, g.batch,
                     g.stride_a);
  p->b = make_layout(g.ab_type, g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, g.ldb, g.batch,
                     g.stride_b);
  p->d = make_layout(g.d_type, g.m, g.n, g.ldd, g.batch, g.stride_d);

  cublasLtMatmulPreference_t pref = nullptr;
  check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  const auto set_pref = [&](cublasLtMatmulPreferenceAttributes_t attr, auto value) {
    check(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)),
          "cublasLtMatmulPreferenceSetAttribute");
  };
  set_pref(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, kWorkspaceBytes);
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(align_a));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(align_b));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(align_d));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(align_d));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(handle_), p->desc, p->a, p->b,
                                     p->d, p->d, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  check(status, "cublasLtMatmulAlgoGetHeuristic");
  if (found == 0)
    fail("GEMM: cuBLASLt has no algorithm for {} x {} products m={} n={} k={} (batch {})",
         dtype_name(g.ab_type), dtype_name(g.d_type), g.m, g.n, g.k, g.batch);
  p->algo = result.algo;
  slot = std::move(p);
  return *slot;
}

void CublasLtGemm::run(const GemmArgs& g, cudaStream_t stream) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  Plan& p = plan(g);
  if (g.bias) set(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias);
  check(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), p.desc, &g.alpha, g.a, p.a, g.b, p.b,
                       &g.beta, g.d, p.d, g.d, p.d, &p.algo, workspace_->data(), kWorkspaceBytes,
                       stream),
        "cublasLtMatmul");
}

}  // namespace ebb::cuda
