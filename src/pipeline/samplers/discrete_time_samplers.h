#pragma once
// Samplers defined on a discrete-time model's own timesteps, as diffusers runs them. They take
// the latent in the same k-diffusion convention as the other samplers (x = x0 + sigma * noise)
// and the sigmas of their timesteps (see plan_sampling in sampler.h, which builds both).
#include <span>

#include "pipeline/samplers/sampler_io.h"

namespace ebb {

// Latent Consistency Model sampling (diffusers' LCMScheduler). Each step's estimate goes
// through the consistency boundary condition of the step's model timestep,
//   x0 = c_out(t) * D(x, sigma) + c_skip(t) * x / sqrt(sigma^2 + 1),
// with c_skip = 0.25 / ((10 t)^2 + 0.25), c_out = 10 t / sqrt((10 t)^2 + 0.25); the next latent
// is x0 plus fresh noise (io.noise, drawn once per step but the last) of level sigmas[i + 1].
// timesteps holds one model timestep per step.
void sample_lcm(std::span<float> x, std::span<const float> sigmas, std::span<const int> timesteps,
                const SamplerCallbacks& io);

// DDIM with eta = 0, as diffusers' DDIMScheduler steps: the model is called at sigmas[i], the
// step lands at landing_sigmas[i], and the landed latent is then taken as is, in diffusers'
// variance-preserving scale x / sqrt(sigma^2 + 1), to be the latent at sigmas[i + 1].
// diffusers lands each timestep t on t - T / steps, which is not the next timestep when steps
// does not divide T, and its last step on alphas_cumprod[0] (set_alpha_to_one = False in SD's
// configurations); with a final sigma of 0 the result is then diffusers' final latent.
void sample_ddim(std::span<float> x, std::span<const float> sigmas,
                 std::span<const float> landing_sigmas, const SamplerCallbacks& io);

}  // namespace ebb
