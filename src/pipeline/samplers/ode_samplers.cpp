// The deterministic k-diffusion samplers: numerical solvers of the probability-flow ODE.
#include <algorithm>
#include <cmath>
#include <span>
#include <string_view>
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

namespace {

// Heun and DPM2 share their frame: each step denoises at sigma, takes an Euler step to a probe
// sigma, denoises there and updates x from both estimates. The last step down to 0 is a plain
// Euler step, as the probe's slope would divide by zero. `probe` maps (sigma, sigma_next) to the
// probe sigma; `update` maps (x, denoised, x_probe, denoised_probe, sigma, sigma_next,
// sigma_probe) of one element to its new value.
template <typename Probe, typename Update>
void sample_second_order(std::string_view name, std::span<float> x, std::span<const float> sigmas,
                         const SamplerCallbacks& io, Probe probe, Update update) {
  const int steps = check_sampler_inputs(name, x, sigmas, io, false);
  std::vector<float> denoised(x.size());
  std::vector<float> x_probe(x.size());
  std::vector<float> denoised_probe(x.size());
  for (int i = 0; i < steps; ++i) {
    const double sigma = sigmas[i];
    const double sigma_next = sigmas[i + 1];
    denoise_step(io, i, sigmas, x, denoised);
    if (sigma_next == 0) {
      euler_step(x, denoised, sigma, sigma_next, x);
      continue;
    }
    const double sigma_probe = probe(sigma, sigma_next);
    euler_step(x, denoised, sigma, sigma_probe, x_probe);
    io.denoise(x_probe, static_cast<float>(sigma_probe), denoised_probe);
    for (size_t j = 0; j < x.size(); ++j)
      x[j] = static_cast<float>(
          update(x[j], denoised[j], x_probe[j], denoised_probe[j], sigma, sigma_next, sigma_probe));
  }
}

}  // namespace

void sample_heun(std::span<float> x, std::span<const float> sigmas, const SamplerCallbacks& io) {
  sample_second_order(
      "heun", x, sigmas, io, [](double, double sigma_next) { return sigma_next; },
      [](double x, double denoised, double x_next, double denoised_next, double sigma,
         double sigma_next, double) {
        const double slope = (x - denoised) / sigma;
        const double slope_next = (x_next - denoised_next) / sigma_next;
        return x + (slope + slope_next) / 2 * (sigma_next - sigma);
      });
}

void sample_dpm2(std::span<float> x, std::span<const float> sigmas, const SamplerCallbacks& io) {
  sample_second_order(
      "dpm2", x, sigmas, io,
      [](double sigma, double sigma_next) {
        return std::exp((std::log(sigma) + std::log(sigma_next)) / 2);
      },
      [](double x, double, double x_mid, double denoised_mid, double sigma, double sigma_next,
         double sigma_mid) {
        const double slope_mid = (x_mid - denoised_mid) / sigma_mid;
        return x + slope_mid * (sigma_next - sigma);
      });
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
