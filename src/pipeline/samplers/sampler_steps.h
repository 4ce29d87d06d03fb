#pragma once
// Pieces shared by the samplers: input checks, the denoiser call with its progress report, and
// the elementary updates of a latent.
#include <span>
#include <string_view>
#include <utility>

#include "pipeline/samplers/sampler_io.h"

namespace ebb {

// Rejects what would make a sampler divide by zero, produce NaN or write out of bounds: fewer
// than two sigmas, sigmas that are not finite or do not strictly decrease, a final sigma below
// zero, an empty latent, a missing denoiser, or a missing noise source when one is needed.
// Returns the number of steps.
int check_sampler_inputs(std::string_view sampler, std::span<const float> x,
                         std::span<const float> sigmas, const SamplerCallbacks& io,
                         bool needs_noise);

// Whether a sampler that adds noise after every step but the last draws any: it does unless it
// makes one step down to 0.
bool draws_noise(std::span<const float> sigmas);

// Calls the denoiser at (x, sigmas[step]), then the progress callback.
void denoise_step(const SamplerCallbacks& io, int step, std::span<const float> sigmas,
                  std::span<const float> x, std::span<float> denoised);

// One Euler step of the probability-flow ODE dx/dsigma = (x - denoised) / sigma, from x at
// sigma into out at sigma_next. out may be x.
void euler_step(std::span<const float> x, std::span<const float> denoised, double sigma,
                double sigma_next, std::span<float> out);

// x += scale * noise, with noise drawn from io.noise into `scratch`.
void add_noise(const SamplerCallbacks& io, std::span<float> x, std::span<float> scratch,
               double scale);

// k-diffusion's ancestral split of a step sigma -> sigma_next (eta = 1): a deterministic step
// down to sigma_down, then fresh noise of standard deviation sigma_up.
struct AncestralStep {
  double sigma_down;
  double sigma_up;
};
AncestralStep ancestral_step(double sigma, double sigma_next);

}  // namespace ebb
