#include "pipeline/samplers/discrete_time_samplers.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "pipeline/samplers/sampler_steps.h"

namespace ebb {
namespace {

// LCM's consistency parametrisation: sigma_data 0.5, timesteps scaled by 10.
struct BoundaryCondition {
  double c_skip;
  double c_out;
};

BoundaryCondition lcm_boundary_condition(int timestep) {
  constexpr double kSigmaData = 0.5;
  constexpr double kTimestepScaling = 10;
  const double scaled = timestep * kTimestepScaling;
  const double norm = scaled * scaled + kSigmaData * kSigmaData;
  return {kSigmaData * kSigmaData / norm, scaled / std::sqrt(norm)};
}

}  // namespace

void sample_lcm(std::span<float> x, std::span<const float> sigmas, std::span<const int> timesteps,
                const SamplerCallbacks& io) {
  const int steps = check_sampler_inputs("lcm", x, sigmas, io, draws_noise(sigmas));
  if (timesteps.size() != static_cast<size_t>(steps)) {
    fail("lcm: {} timesteps given for {} steps", timesteps.size(), steps);
  }
  std::vector<float> denoised(x.size());
  std::vector<float> noise(x.size());
  for (int i = 0; i < steps; ++i) {
    if (timesteps[i] < 0) fail("lcm: timestep[{}] = {} is negative", i, timesteps[i]);
    const double sigma = sigmas[i];
    denoise_step(io, i, sigmas, x, denoised);
    const BoundaryCondition bc = lcm_boundary_condition(timesteps[i]);
    const double skip = bc.c_skip / std::sqrt(sigma * sigma + 1);
    for (size_t j = 0; j < x.size(); ++j) {
      x[j] = static_cast<float>(bc.c_out * denoised[j] + skip * x[j]);
    }
    if (sigmas[i + 1] > 0) add_noise(io, x, noise, sigmas[i + 1]);
  }
}

void sample_ddim(std::span<float> x, std::span<const float> sigmas,
                 std::span<const float> landing_sigmas, const SamplerCallbacks& io) {
  const int steps = check_sampler_inputs("ddim_trailing", x, sigmas, io, false);
  if (landing_sigmas.size() != static_cast<size_t>(steps)) {
    fail("ddim_trailing: {} landing sigmas given for {} steps", landing_sigmas.size(), steps);
  }
  std::vector<float> denoised(x.size());
  for (int i = 0; i < steps; ++i) {
    const double sigma = sigmas[i];
    const double landing = landing_sigmas[i];
    if (!(landing >= 0 && landing <= sigma)) {
      fail("ddim_trailing: landing sigma[{}] = {} is not in [0, {}]", i, landing, sigma);
    }
    denoise_step(io, i, sigmas, x, denoised);
    // Stepping the noise part from sigma to the landing level is DDIM's update (eta = 0) in
    // this convention; the rescale keeps the variance-preserving latent that diffusers carries.
    const double sigma_next = sigmas[i + 1];
    const double noise_gain = landing / sigma;
    const double rescale = std::sqrt((sigma_next * sigma_next + 1) / (landing * landing + 1));
    for (size_t j = 0; j < x.size(); ++j) {
      const double x0 = denoised[j];
      x[j] = static_cast<float>((x0 + (x[j] - x0) * noise_gain) * rescale);
    }
  }
}

}  // namespace ebb
