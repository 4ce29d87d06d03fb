#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/strided_layout.h"

namespace ebb::cpu {
namespace {

template <size_t Bytes>
void copy_strided(const std::byte* src, int64_t ss, std::byte* dst, int64_t ds, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(dst + i * ds * Bytes, src + i * ss * Bytes, Bytes);
}

}  // namespace

void copy(const Context& ctx, const Tensor& src, const Tensor& dst) {
  const StridedLayout layout(dst.shape(), {&dst.strides(), &src.strides()});
  const size_t bytes = dtype_info(src.dtype()).block_bytes;
  const std::byte* s = src.bytes();
  std::byte* d = dst.mutable_bytes();
  const int64_t ds = layout.inner_stride(0), ss = layout.inner_stride(1);
  layout.for_each_run(ctx.pool, [&](const int64_t* off, int64_t count) {
    const std::byte* from = s + off[1] * bytes;
    std::byte* to = d + off[0] * bytes;
    if (ss == 1 && ds == 1) {
      std::memcpy(to, from, count * bytes);
      return;
    }
    switch (bytes) {
      case 1:
        copy_strided<1>(from, ss, to, ds, count);
        break;
      case 2:
        copy_strided<2>(from, ss, to, ds, count);
        break;
      case 4:
        copy_strided<4>(from, ss, to, ds, count);
        break;
      default:
        copy_strided<8>(from, ss, to, ds, count);
        break;
    }
  });
}

void upsample_nearest2x(const Context& ctx, const Tensor& x, const Tensor& out) {
  const int64_t h = x.dim(2), w = x.dim(3);
  const size_t bytes = dtype_info(x.dtype()).block_bytes;
  const std::byte* s = x.bytes();
  std::byte* d = out.mutable_bytes();
  // One input row makes two identical output rows.
  ctx.pool.parallel_for(x.dim(0) * x.dim(1) * h, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const std::byte* in = s + r * w * bytes;
      std::byte* row = d + 2 * r * 2 * w * bytes;
      for (int64_t i = 0; i < w; ++i) {
        std::memcpy(row + 2 * i * bytes, in + i * bytes, bytes);
        std::memcpy(row + (2 * i + 1) * bytes, in + i * bytes, bytes);
      }
      std::memcpy(row + 2 * w * bytes, row, 2 * w * bytes);
    }
  });
}

}  // namespace ebb::cpu
