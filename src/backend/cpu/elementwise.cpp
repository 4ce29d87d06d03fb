#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/strided_layout.h"
#include "backend/cpu/vector_kernels.h"

namespace ebb::cpu {

void binary(const Context& ctx, BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  const StridedLayout layout(out.shape(), {&out.strides(), &a.strides(), &b.strides()});
  const float* ad = a.data<float>();
  const float* bd = b.data<float>();
  float* y = out.mutable_data<float>();
  const int64_t sa = layout.inner_stride(1), sb = layout.inner_stride(2);
  const VectorKernels& k = vector_kernels();
  const auto kernel = op == BinaryOp::Add ? k.add : k.mul;
  layout.for_each_run(ctx.pool, [&](const int64_t* off, int64_t count) {
    if ((sa == 0 || sa == 1) && (sb == 0 || sb == 1)) {
      kernel(ad + off[1], sa == 0, bd + off[2], sb == 0, y + off[0], count);
      return;
    }
    for (int64_t i = 0; i < count; ++i) {
      const float u = ad[off[1] + i * sa], v = bd[off[2] + i * sb];
      y[off[0] + i] = op == BinaryOp::Add ? u + v : u * v;
    }
  });
}

}  // namespace ebb::cpu
