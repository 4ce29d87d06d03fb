#include "pipeline/samplers/sampler_steps.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace ebb {

int check_sampler_inputs(std::string_view sampler, std::span<const float> x,
                         std::span<const float> sigmas, const SamplerCallbacks& io,
                         bool needs_noise) {
  if (sigmas.size() < 2) {
    fail("{}: need at least 2 sigmas (one step and the final level), got {}", sampler,
         sigmas.size());
  }
  for (size_t i = 0; i < sigmas.size(); ++i) {
    if (!std::isfinite(sigmas[i])) fail("{}: sigma[{}] is {}", sampler, i, sigmas[i]);
    if (i > 0 && !(sigmas[i] < sigmas[i - 1])) {
      fail("{}: sigmas must decrease strictly, but sigma[{}] = {} follows {}", sampler, i,
           sigmas[i], sigmas[i - 1]);
    }
  }
  if (sigmas.back() < 0) fail("{}: the final sigma {} is negative", sampler, sigmas.back());
  if (x.empty()) fail("{}: the latent is empty", sampler);
  if (!io.denoise) fail("{}: no denoiser given", sampler);
  if (needs_noise && !io.noise)
    fail("{}: this sampler draws noise but no noise source given", sampler);
  return static_cast<int>(sigmas.size() - 1);
}

bool draws_noise(std::span<const float> sigmas) {
  return sigmas.size() > 2 || (sigmas.size() == 2 && sigmas[1] > 0);
}

void denoise_step(const SamplerCallbacks& io, int step, std::span<const float> sigmas,
                  std::span<const float> x, std::span<float> denoised) {
  const float sigma = sigmas[static_cast<size_t>(step)];
  io.denoise(x, sigma, denoised);
  if (io.on_step) {
    io.on_step(StepInfo{step, static_cast<int>(sigmas.size() - 1), sigma, x, denoised});
  }
}

void euler_step(std::span<const float> x, std::span<const float> denoised, double sigma,
                double sigma_next, std::span<float> out) {
  const double dt_over_sigma = (sigma_next - sigma) / sigma;
  for (size_t j = 0; j < x.size(); ++j) {
    out[j] = static_cast<float>(x[j] + (x[j] - static_cast<double>(denoised[j])) * dt_over_sigma);
  }
}

void add_noise(const SamplerCallbacks& io, std::span<float> x, std::span<float> scratch,
               double scale) {
  io.noise(scratch);
  for (size_t j = 0; j < x.size(); ++j) {
    x[j] = static_cast<float>(x[j] + scale * scratch[j]);
  }
}

AncestralStep ancestral_step(double sigma, double sigma_next) {
  const double sigma_up =
      std::min(sigma_next, std::sqrt(sigma_next * sigma_next *
                                     (sigma * sigma - sigma_next * sigma_next) / (sigma * sigma)));
  return {std::sqrt(sigma_next * sigma_next - sigma_up * sigma_up), sigma_up};
}

}  // namespace ebb
