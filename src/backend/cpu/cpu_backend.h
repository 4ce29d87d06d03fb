#pragma once
// The CPU backend: OpenBLAS for matrix products (conv2d through bounded im2col tiles), SIMD
// kernels (AVX2+FMA when the CPU has them, portable code otherwise) for the rest, one thread
// pool for both (OpenBLAS runs with as many threads as the pool). Results are bit-identical run to
// run for a fixed thread count.
#include <cstdint>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"

namespace ebb {

class CpuBackend final : public Backend {
 public:
  // threads <= 0: one per physical core. budget: cap on the arena's bytes (Arena::kUnlimited).
  explicit CpuBackend(int threads = 0, uint64_t budget = Arena::kUnlimited);

  int threads() const { return pool_.size(); }
  // Which SIMD kernels run: "avx2" or "portable".
  const char* kernels() const;

 protected:
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

 private:
  ThreadPool pool_;
};

}  // namespace ebb
