#include "pipeline/samplers/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.h"
#include "pipeline/samplers/discrete_time_samplers.h"
#include "pipeline/samplers/enum_names.h"
#include "pipeline/samplers/k_diffusion_samplers.h"

namespace ebb {
namespace {

constexpr std::array<EnumName<Sampler>, 8> kSamplerNames = {{
    {Sampler::euler, "euler"},
    {Sampler::euler_a, "euler_a"},
    {Sampler::heun, "heun"},
    {Sampler::dpm2, "dpm2"},
    {Sampler::dpmpp_2m, "dpm++2m"},
    {Sampler::dpmpp_2s_a, "dpm++2s_a"},
    {Sampler::lcm, "lcm"},
    {Sampler::ddim_trailing, "ddim_trailing"},
}};

// Noise levels of the given model timesteps, then the final 0.
std::vector<float> timestep_sigmas(const DiscreteSchedule& model, const std::vector<int>& ts) {
  std::vector<float> sigmas;
  for (int t : ts) sigmas.push_back(static_cast<float>(model.sigma(t)));
  sigmas.push_back(0.0f);
  return sigmas;
}

// See SamplingPlan::initial_noise_scale.
float initial_noise_scale(Sampler sampler, float first_sigma) {
  const bool variance_preserving = sampler == Sampler::lcm || sampler == Sampler::ddim_trailing;
  return variance_preserving ? std::sqrt(first_sigma * first_sigma + 1.0f) : first_sigma;
}

template <typename T>
std::vector<T> drop_front(const std::vector<T>& values, int count) {
  if (values.empty()) return values;
  return {values.begin() + count, values.end()};
}

}  // namespace

Sampler parse_sampler(std::string_view name) {
  return parse_enum_name<Sampler>("sampler", name, kSamplerNames);
}

std::string_view sampler_name(Sampler sampler) {
  return enum_name<Sampler>(sampler, kSamplerNames);
}

SamplingPlan plan_sampling(Sampler sampler, Schedule schedule, const DiscreteSchedule& model,
                           int steps) {
  SamplingPlan plan{sampler, {}, {}, {}, 0.0f};
  switch (sampler) {
    case Sampler::lcm:
      plan.timesteps = lcm_timesteps(model.timesteps(), steps);
      plan.sigmas = timestep_sigmas(model, plan.timesteps);
      plan.initial_noise_scale = initial_noise_scale(sampler, plan.sigmas.front());
      return plan;
    case Sampler::ddim_trailing: {
      const std::vector<int> timesteps = ddim_trailing_timesteps(model.timesteps(), steps);
      const int stride = model.timesteps() / steps;
      for (int t : timesteps) {
        // A landing below timestep 0 is alphas_cumprod[0] (SD's set_alpha_to_one = False).
        plan.landing_sigmas.push_back(static_cast<float>(model.sigma(std::max(t - stride, 0))));
      }
      plan.sigmas = timestep_sigmas(model, timesteps);
      plan.initial_noise_scale = initial_noise_scale(sampler, plan.sigmas.front());
      return plan;
    }
    case Sampler::euler:
    case Sampler::euler_a:
    case Sampler::heun:
    case Sampler::dpm2:
    case Sampler::dpmpp_2m:
    case Sampler::dpmpp_2s_a:
      plan.sigmas = make_sigmas(schedule, model, steps);
      plan.initial_noise_scale = initial_noise_scale(sampler, plan.sigmas.front());
      return plan;
  }
  fail("invalid sampler {}", static_cast<int>(sampler));
}

int strength_steps(int steps, double strength) {
  if (!(strength >= 0 && strength <= 1)) fail("strength {} is not in [0, 1]", strength);
  const int run = static_cast<int>(std::floor(steps * strength));  // at most steps
  if (run < 1) {
    fail(
        "strength {} of {} steps leaves no step to run (it runs floor(steps * strength)); "
        "raise --strength or --steps",
        strength, steps);
  }
  return run;
}

SamplingPlan plan_from_step(const SamplingPlan& plan, int first) {
  const int steps = static_cast<int>(plan.sigmas.size()) - 1;
  if (first < 0 || first >= steps) fail("cannot start a plan of {} steps at step {}", steps, first);
  SamplingPlan tail{plan.sampler, drop_front(plan.sigmas, first),
                    drop_front(plan.landing_sigmas, first), drop_front(plan.timesteps, first), 0};
  tail.initial_noise_scale = initial_noise_scale(plan.sampler, tail.sigmas.front());
  return tail;
}

void sample(const SamplingPlan& plan, std::span<float> x, const SamplerCallbacks& io) {
  switch (plan.sampler) {
    case Sampler::euler:
      return sample_euler(x, plan.sigmas, io);
    case Sampler::euler_a:
      return sample_euler_ancestral(x, plan.sigmas, io);
    case Sampler::heun:
      return sample_heun(x, plan.sigmas, io);
    case Sampler::dpm2:
      return sample_dpm2(x, plan.sigmas, io);
    case Sampler::dpmpp_2m:
      return sample_dpmpp_2m(x, plan.sigmas, io);
    case Sampler::dpmpp_2s_a:
      return sample_dpmpp_2s_ancestral(x, plan.sigmas, io);
    case Sampler::lcm:
      return sample_lcm(x, plan.sigmas, plan.timesteps, io);
    case Sampler::ddim_trailing:
      return sample_ddim(x, plan.sigmas, plan.landing_sigmas, io);
  }
  fail("invalid sampler {}", static_cast<int>(plan.sampler));
}

}  // namespace ebb
