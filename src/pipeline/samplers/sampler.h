#pragma once
// Choosing and running a sampler: the names users type (stable-diffusion.cpp's), the noise
// levels each sampler walks for a discrete-time model, and one call that runs it.
#include <span>
#include <string_view>
#include <vector>

#include "pipeline/samplers/sampler_io.h"
#include "pipeline/schedule.h"

namespace ebb {

enum class Sampler { euler, euler_a, heun, dpm2, dpmpp_2m, dpmpp_2s_a, lcm, ddim_trailing };

// "euler", "euler_a", "heun", "dpm2", "dpm++2m", "dpm++2s_a", "lcm", "ddim_trailing".
Sampler parse_sampler(std::string_view name);
std::string_view sampler_name(Sampler sampler);

struct SamplingPlan {
  Sampler sampler = Sampler::euler;
  std::vector<float> sigmas;          // steps + 1 noise levels, the last one 0
  std::vector<float> landing_sigmas;  // ddim_trailing: where each step lands (see sample_ddim)
  std::vector<int> timesteps;         // lcm: the model timestep of each step
  // A text-to-image latent starts as standard normal noise times this: sigmas[0] for the
  // k-diffusion samplers; sqrt(sigmas[0]^2 + 1) for lcm and ddim_trailing, whose diffusers
  // schedulers start from unit-variance noise in the variance-preserving scale.
  float initial_noise_scale = 0;
};

// The k-diffusion samplers walk the named schedule. lcm and ddim_trailing walk their own
// timesteps (lcm_timesteps, ddim_trailing_timesteps), as diffusers' schedulers do, whatever the
// schedule. steps < 1, or more steps than the sampler's timestep grid holds, is an ebb::Error.
SamplingPlan plan_sampling(Sampler sampler, Schedule schedule, const DiscreteSchedule& model,
                           int steps);

// Image to image runs the tail of the plan for the full step count, as diffusers' pipelines
// (get_timesteps) and k-diffusion's img2img do: the last min(floor(steps · strength), steps)
// steps. strength must be in [0, 1] and leave at least one step; otherwise an ebb::Error.
int strength_steps(int steps, double strength);

// The plan from step `first` on: its noise levels, landings and timesteps, so every sampler
// starts mid-plan exactly as it would have continued (multistep samplers start afresh, first
// order, as diffusers' do). initial_noise_scale follows the new first sigma. first must leave
// at least one step.
SamplingPlan plan_from_step(const SamplingPlan& plan, int first);

// Runs the plan's sampler on x in place.
void sample(const SamplingPlan& plan, std::span<float> x, const SamplerCallbacks& io);

}  // namespace ebb
