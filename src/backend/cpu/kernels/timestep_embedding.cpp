#include "backend/cpu/kernels/timestep_embedding.h"

#include <cmath>
#include <vector>

#include "core/error.h"

namespace ebb::cpu {

float timestep_frequency_denominator(int64_t n, int64_t dim, const TimestepEmbeddingParams& p) {
  if (n < 0 || dim < 2) fail("timestep embedding: invalid shape n={} dim={}", n, dim);
  const float denominator = static_cast<float>(dim / 2) - p.downscale_freq_shift;
  if (!(denominator > 0.0f) || !(p.max_period > 0.0f))
    fail(
        "timestep embedding: dim {} with downscale_freq_shift {} and max_period {} gives no "
        "frequencies",
        dim, p.downscale_freq_shift, p.max_period);
  return denominator;
}

void timestep_embedding(const float* timesteps, int64_t n, int64_t dim,
                        const TimestepEmbeddingParams& p, float* out) {
  const float denominator = timestep_frequency_denominator(n, dim, p);
  const int64_t half = dim / 2;
  if (n > 0 && (!timesteps || !out)) fail("timestep embedding: null input or output");

  // Each step rounds to float32 exactly where torch's float32 tensors do.
  const float neg_log_period = static_cast<float>(-std::log(static_cast<double>(p.max_period)));
  std::vector<float> freq(half);
  for (int64_t i = 0; i < half; ++i)
    freq[i] = std::exp(neg_log_period * static_cast<float>(i) / denominator);

  const int64_t sin_at = p.flip_sin_to_cos ? half : 0;
  const int64_t cos_at = p.flip_sin_to_cos ? 0 : half;
  for (int64_t r = 0; r < n; ++r) {
    const float t = timesteps[r] * p.time_factor;
    float* row = out + r * dim;
    for (int64_t i = 0; i < half; ++i) {
      const double arg = p.scale * (t * freq[i]);
      row[sin_at + i] = static_cast<float>(std::sin(arg));
      row[cos_at + i] = static_cast<float>(std::cos(arg));
    }
    if (dim % 2 == 1) row[dim - 1] = 0.0f;
  }
}

}  // namespace ebb::cpu
