// The deterministic k-diffusion samplers: numerical solvers of the probability-flow ODE.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "pipeline/samplers/k_diffusion_samplers.h"
#include "pipeline/samplers/sampler_steps.h"

namespace ebb {

void sample_euler(std::span<float> x, std::span<const float> sigmas, const SamplerCallbacks& io) {
  const int steps = check_sampler_inputs("euler", x, sigmas, io, false);
  std::vector<float> denoised(x.size());
  for (int i = 0; i < steps; ++i) {
    denoise_step(io, i, sigmas, x, denoised);
    euler_step(x, denoised, sigmas[i], sigmas[i + 1], x);
  }
}

void sample_heun(std::span<float> x, std::span<const float> sigmas, const SamplerCallbacks& io) {
  const int steps = check_sampler_inputs("heun", x, sigmas, io, false);
  std::vector<float> denoised(x.size());
  std::vector<float> x_euler(x.size());
  std::vector<float> denoised_euler(x.size());
  for (int i = 0; i < steps; ++i) {
    const double sigma = sigmas[i];
    const double sigma_next = sigmas[i + 1];
    denoise_step(io, i, sigmas, x, denoised);
    if (sigma_next == 0) {
      euler_step(x, denoised, sigma, sigma_next, x);
      continue;
    }
    const double dt = sigma_next - sigma;
    euler_step(x, denoised, sigma, sigma_next, x_euler);
    io.denoise(x_euler, sigmas[i + 1], denoised_euler);
    for (size_t j = 0; j < x.size(); ++j) {
      const double slope = (x[j] - static_cast<double>(denoised[j])) / sigma;
      const double slope_next = (x_euler[j] - static_cast<double>(denoised_euler[j])) / sigma_next;
      x[j] = static_cast<float>(x[j] + (slope + slope_next) / 2 * dt);
    }
  }
}

void sample_dpm2(std::span<float> x, std::span<const float> sigmas, const SamplerCallbacks& io) {
  const int steps = check_sampler_inputs("dpm2", x, sigmas, io, false);
  std::vector<float> denoised(x.size());
  std::vector<float> x_mid(x.size());
  std::vector<float> denoised_mid(x.size());
  for (int i = 0; i < steps; ++i) {
    const double sigma = sigmas[i];
    const double sigma_next = sigmas[i + 1];
    denoise_step(io, i, sigmas, x, denoised);
    if (sigma_next == 0) {
      euler_step(x, denoised, sigma, sigma_next, x);
      continue;
    }
    const double sigma_mid = std::exp((std::log(sigma) + std::log(sigma_next)) / 2);
    euler_step(x, denoised, sigma, sigma_mid, x_mid);
    io.denoise(x_mid, static_cast<float>(sigma_mid), denoised_mid);
    for (size_t j = 0; j < x.size(); ++j) {
      const double slope_mid = (x_mid[j] - static_cast<double>(denoised_mid[j])) / sigma_mid;
      x[j] = static_cast<float>(x[j] + slope_mid * (sigma_next - sigma));
    }
  }
}

void sample_dpmpp_2m(std::span<float> x, std::span<const float> sigmas,
                     const SamplerCallbacks& io) {
  const int steps = check_sampler_inputs("dpm++2m", x, sigmas, io, false);
  std::vector<float> denoised(x.size());
  std::vector<float> previous(x.size());
  for (int i = 0; i < steps; ++i) {
    const double sigma = sigmas[i];
    const double sigma_next = sigmas[i + 1];
    denoise_step(io, i, sigmas, x, denoised);
    if (sigma_next == 0) {
      std::copy(denoised.begin(), denoised.end(), x.begin());
      continue;
    }
    // DPM-Solver++ steps exactly in t = -log(sigma) for a constant estimate; 2M replaces the
    // estimate by its linear extrapolation from the previous step's (not on the first step).
    const double h = std::log(sigma) - std::log(sigma_next);
    const double keep = sigma_next / sigma;
    const double gain = -std::expm1(-h);
    double weight_now = 1;
    double weight_previous = 0;
    if (i > 0) {
      const double r = (std::log(sigmas[i - 1]) - std::log(sigma)) / h;
      weight_now = 1 + 1 / (2 * r);
      weight_previous = -1 / (2 * r);
    }
    for (size_t j = 0; j < x.size(); ++j) {
      const double estimate = weight_now * denoised[j] + weight_previous * previous[j];
      x[j] = static_cast<float>(keep * x[j] + gain * estimate);
    }
    std::swap(denoised, previous);
  }
}

}  // namespace ebb
