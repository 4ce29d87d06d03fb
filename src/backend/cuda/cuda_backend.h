#pragma once
// The CUDA backend: one GPU, one compute stream, activations in F16 by default (BF16 or F32 on
// request; F32 is what tests compare against the CPU). Matrix products run on cuBLASLt, conv2d
// on the implicit-GEMM 3x3 kernel where it is faster (kernels/conv3x3.h) and as im2col + GEMM
// elsewhere (on cuDNN when asked and libcudnn.so.9 loads: cudnn_conv.h), attention on
// cuDNN's fused attention where it loads and cudnn_attention_rule.h picks it (cudnn_attention.h),
// else on the flash kernel where it applies and as two GEMMs around a softmax otherwise, the other
// ops on the kernels of backend/cuda/kernels/.
//
// Parameters reach the GPU one way: the weight store uploads them in their file's dtype through
// CudaTransfer (cuda_transfer.h). Ops read them as they are, float types other than the
// activations' converted into scratch per op and block-quantized ones dequantized into scratch
// by each product; a parameter in host memory is an error naming it. Device memory comes from
// the arena, so --max-vram caps everything Ebb allocates.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/copy_stream.h"
#include "backend/cuda/cudnn_attention_rule.h"
#include "backend/cuda/pinned_pool.h"

namespace ebb {

namespace cuda {
class CublasLtGemm;
class CudnnAttention;
class CudnnConv;
}  // namespace cuda

struct CudaBackendOptions {
  int device = 0;
  DType activation_dtype = DType::F16;  // F16, BF16 or F32
  uint64_t budget = Arena::kUnlimited;  // device bytes Ebb may hold
  bool allow_tf32 = false;              // F32 products on the TF32 tensor cores
  // conv2d's scratch bound: the im2col patch matrix (larger images are gathered in column
  // chunks) and cuDNN's workspace (a shape whose every algorithm needs more runs as im2col).
  uint64_t max_im2col_bytes = uint64_t(256) << 20;
  // conv2d on cuDNN when it loads. Off by default: with NCHW activations, cuDNN's legacy API
  // is slower than im2col + GEMM at most SD shapes on the H100 (docs/benchmarks.md).
  bool use_cudnn = false;
  // Unmasked f16/bf16 attention on cuDNN or Ebb's flash kernel (cudnn_attention_rule.h);
  // independent of use_cudnn: cuDNN's attention is faster where the rule takes it, its conv2d
  // is not.
  AttentionKernelChoice attention = AttentionKernelChoice::Auto;
  // 3x3 stride-1 convolutions on the implicit-GEMM kernel where it applies and beats im2col
  // (kernels/conv3x3.h); off: im2col + GEMM, which benchmarks and tests compare against.
  bool implicit_conv = true;
};

// ebb::Error explaining why when there is no driver, no device or no device `index`.
void require_cuda_device(int index);

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options = {});
  ~CudaBackend() override;

  int device_index() const { return device().index; }
  // Whether conv2d runs on cuDNN (asked for, and it loaded).
  bool uses_cudnn() const { return cudnn_ != nullptr; }
  // Whether attention may run on cuDNN (not turned off, and it loaded).
  bool uses_cudnn_attention() const { return cudnn_attention_ != nullptr; }
  cudaStream_t stream() const { return stream_; }
  CopyStream& copy_stream() { return copies_; }
  PinnedPool& pinned_pool() { return pinned_; }
  // The compute stream waits (on the device) for an upload before its next op.
  void wait(const CopyEvent& upload);
  // Blocks until every op enqueued so far has finished; reports errors they raised.
  void synchronize();

  // Makes the copy stream wait for the compute work enqueued so far: device memory freed on the
  // host may still be read by queued kernels, and an upload must not overwrite it under them.
  void order_uploads_after_compute();
  // Enqueues an upload of host bytes (pageable or not) to device `dst` on the copy stream,
  // copied through pinned blocks of `block` bytes with at most `in_flight` of them queued in
  // `queued` (each event keeps its block until its copy completed; the last one completes with
  // all). Call order_uploads_after_compute() first when `dst` may be reused memory.
  void upload_staged(std::byte* dst, std::span<const std::byte> src, uint64_t block, int in_flight,
                     std::deque<CopyEvent>& queued);

 protected:
  Tensor parameter(const Tensor& p) override;
  bool computes_in(DType t) const override;
  void copy_from_host(const Tensor& dst, const void* src) override;
  void copy_to_host(const Tensor& src, void* dst) override;
  void linear_into(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out) override;
  void conv2d_into(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                   const Tensor& out) override;
  void group_norm_into(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta,
                       float eps, const Tensor& out) override;
  void layer_norm_into(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                       const Tensor& out) override;
  void rms_norm_into(const Tensor& x, const Tensor& gamma, float eps, const Tensor& out) override;
  void binary_into(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void copy_into(const Tensor& src, const Tensor& dst) override;
  void upsample_nearest2x_into(const Tensor& x, const Tensor& out) override;
  void activation_into(Activation a, const Tensor& x, const Tensor& out) override;
  void geglu_into(const Tensor& x, GeluApproximation approximation, const Tensor& out) override;
  void softmax_into(const Tensor& x, const Tensor& out) override;
  void attention_into(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                      const Tensor& mask, std::optional<float> scale, const Tensor& out) override;
  void rope_into(const Tensor& x, int64_t heads, const Tensor& cos, const Tensor& sin,
                 RopeLayout layout, const Tensor& out) override;
  void rope_tables_into(const Tensor& ids, const std::vector<int64_t>& axes_dim, double theta,
                        const Tensor& cos, const Tensor& sin) override;
  void timestep_embedding_into(const Tensor& t, const TimestepEmbeddingParams& params,
                               const Tensor& out) override;
  bool all_finite_dense(const Tensor& x) override;

 private:
  struct StreamOrderedMemory;
  CudaBackend(const CudaBackendOptions& options, StreamOrderedMemory memory);
  // A parameter already on this device (uploaded by the weight store as stored) in the
  // activation dtype: itself, or converted into scratch when it is another float type.
  Tensor in_activation_dtype(const Tensor& p);
  // conv2d on cuDNN; false (nothing enqueued) where it does not apply.
  bool conv2d_cudnn(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                    const Tensor& out);
  // conv2d on the implicit-GEMM 3x3 kernel; false (nothing enqueued) where it does not apply.
  bool conv2d_implicit(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                       const Tensor& out);
  // The weight of a product in the activation dtype: itself, or decoded into scratch.
  Tensor product_weight(const Tensor& w, std::string_view op);
  void check_activations(std::string_view op, std::initializer_list<Operand> operands) const;
  // q·kᵀ, mask, softmax and ·v with the scores in memory: masks, F32, other head sizes.
  void attention_with_scores(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                             const Tensor& mask, float scale, const Tensor& out);

  uint64_t max_im2col_bytes_;
  bool implicit_conv_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::CublasLtGemm> gemm_;
  std::unique_ptr<cuda::CudnnConv> cudnn_;  // null: conv2d as im2col + GEMM
  AttentionKernelChoice attention_choice_;
  std::unique_ptr<cuda::CudnnAttention> cudnn_attention_;  // null: attention on Ebb's kernels
  CopyStream copies_;
  PinnedPool pinned_;
};

}  // namespace ebb
