#pragma once
// The CPU backend's ops on checked operands (see Backend's hooks): activations are dense F32,
// outputs dense and allocated. Work is split over the backend's thread pool in chunks fixed by
// the thread count, so results are bit-identical run to run.
#include <string_view>

#include "backend/arena.h"
#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"
#include "tensor/tensor.h"

namespace ebb::cpu {

struct Context {
  ThreadPool& pool;
  Arena& arena;

  int threads() const { return pool.size(); }
  // A scratch block for one op, returned to the arena's cache when dropped.
  std::shared_ptr<Storage> scratch(uint64_t bytes, std::string_view op) const {
    return arena.allocate(bytes, MemoryTag::Scratch, op);
  }
};

void linear(const Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b,
            const Tensor& out);
void conv2d(const Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b,
            const Conv2dGeometry& g, const Tensor& out);
void group_norm(const Context& ctx, const Tensor& x, int64_t groups, const Tensor& gamma,
                const Tensor& beta, float eps, const Tensor& out);
void layer_norm(const Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                float eps, const Tensor& out);
void rms_norm(const Context& ctx, const Tensor& x, const Tensor& gamma, float eps,
              const Tensor& out);
void binary(const Context& ctx, BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void copy(const Context& ctx, const Tensor& src, const Tensor& dst);
void upsample_nearest2x(const Context& ctx, const Tensor& x, const Tensor& out);

// Through the raw-pointer kernels of backend/cpu/kernels.
void activation(const Context& ctx, Activation a, const Tensor& x, const Tensor& out);
void geglu(const Context& ctx, const Tensor& x, GeluApproximation approximation, const Tensor& out);
void softmax(const Context& ctx, const Tensor& x, const Tensor& out);
void attention(const Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
               const Tensor& mask, std::optional<float> scale, const Tensor& out);
void rope(const Context& ctx, const Tensor& x, int64_t heads, const Tensor& cos, const Tensor& sin,
          RopeLayout layout, const Tensor& out);
void rope_tables(const Tensor& ids, const std::vector<int64_t>& axes_dim, double theta,
                 const Tensor& cos, const Tensor& sin);
void timestep_embedding(const Tensor& t, const TimestepEmbeddingParams& params, const Tensor& out);

}  // namespace ebb::cpu
