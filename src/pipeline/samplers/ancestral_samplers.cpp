// The ancestral k-diffusion samplers: each step goes deterministically down to sigma_down and
// adds fresh noise back up to sigma_next.
#include <cmath>
#include <vector>

#include "pipeline/samplers/k_diffusion_samplers.h"
#include "pipeline/samplers/sampler_steps.h"

namespace ebb {

void sample_euler_ancestral(std::span<float> x, std::span<const float> sigmas,
                            const SamplerCallbacks& io) {
  const int steps = check_sampler_inputs("euler_a", x, sigmas, io, draws_noise(sigmas));
  std::vector<float> denoised(x.size());
  std::vector<float> noise(x.size());
  for (int i = 0; i < steps; ++i) {
    denoise_step(io, i, sigmas, x, denoised);
    const AncestralStep split = ancestral_step(sigmas[i], sigmas[i + 1]);
    euler_step(x, denoised, sigmas[i], split.sigma_down, x);
    if (sigmas[i + 1] > 0) add_noise(io, x, noise, split.sigma_up);
  }
}

void sample_dpmpp_2s_ancestral(std::span<float> x, std::span<const float> sigmas,
                               const SamplerCallbacks& io) {
  const int steps = check_sampler_inputs("dpm++2s_a", x, sigmas, io, draws_noise(sigmas));
  std::vector<float> denoised(x.size());
  std::vector<float> x_mid(x.size());
  std::vector<float> noise(x.size());
  for (int i = 0; i < steps; ++i) {
    const double sigma = sigmas[i];
    denoise_step(io, i, sigmas, x, denoised);
    const AncestralStep split = ancestral_step(sigma, sigmas[i + 1]);
    if (split.sigma_down == 0) {
      euler_step(x, denoised, sigma, split.sigma_down, x);
    } else {
      // DPM-Solver++(2S) in t = -log(sigma): a first-order step to the midpoint of [t, t_down],
      // then a step over the whole interval with the midpoint's estimate.
      const double h = std::log(sigma) - std::log(split.sigma_down);
      const double sigma_mid = sigma * std::exp(-h / 2);
      const double gain_mid = -std::expm1(-h / 2);
      for (size_t j = 0; j < x.size(); ++j) {
        x_mid[j] = static_cast<float>(sigma_mid / sigma * x[j] + gain_mid * denoised[j]);
      }
      io.denoise(x_mid, static_cast<float>(sigma_mid), denoised);
      const double keep = split.sigma_down / sigma;
      const double gain = -std::expm1(-h);
      for (size_t j = 0; j < x.size(); ++j) {
        x[j] = static_cast<float>(keep * x[j] + gain * denoised[j]);
      }
    }
    if (sigmas[i + 1] > 0) add_noise(io, x, noise, split.sigma_up);
  }
}

}  // namespace ebb
