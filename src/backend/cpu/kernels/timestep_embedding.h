#pragma once
// Sinusoidal timestep embedding, rounded to float32 at the same steps as diffusers'
// get_timestep_embedding. torch's vectorised exp is not correctly rounded, so a frequency may
// differ by an ulp, which a timestep near 1000 turns into ~1e-5 on the output:
//   freq[i] = exp(-ln(max_period) · i / (dim/2 - downscale_freq_shift)),  i < dim/2
//   arg[i]  = scale · (time_factor · t) · freq[i]
//   out     = [sin(arg), cos(arg)], or [cos(arg), sin(arg)] when flip_sin_to_cos,
// followed by one zero when dim is odd.
#include <cstdint>

namespace ebb::cpu {

struct TimestepEmbeddingParams {
  bool flip_sin_to_cos = false;
  float downscale_freq_shift = 1.0f;
  float scale = 1.0f;
  float max_period = 10000.0f;
  // Multiplies each timestep (in float32) before anything else: Flux feeds t ∈ [0, 1] and
  // scales it by 1000 first.
  float time_factor = 1.0f;
};

// SD 1.x/2.x/XL UNets and SD3 (diffusers Timesteps(flip_sin_to_cos=True, shift=0)).
inline TimestepEmbeddingParams sd_timestep_params() {
  return {true, 0.0f, 1.0f, 10000.0f, 1.0f};
}

// Flux timestep and guidance embeddings (BFL's timestep_embedding with time_factor 1000).
inline TimestepEmbeddingParams flux_timestep_params() {
  return {true, 0.0f, 1.0f, 10000.0f, 1000.0f};
}

// The frequency denominator dim/2 - downscale_freq_shift, checked: ebb::Error when n < 0,
// dim < 2, or the parameters give no frequencies.
float timestep_frequency_denominator(int64_t n, int64_t dim, const TimestepEmbeddingParams& params);

// out is [n][dim]. Throws ebb::Error when dim < 2 or the frequency denominator is not positive.
void timestep_embedding(const float* timesteps, int64_t n, int64_t dim,
                        const TimestepEmbeddingParams& params, float* out);

}  // namespace ebb::cpu
