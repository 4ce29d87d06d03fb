#include "pipeline/samplers/denoiser.h"

#include <cmath>
#include <utility>
#include <vector>

#include "core/error.h"

namespace ebb {

DenoiserScalings denoiser_scalings(Prediction prediction, double sigma) {
  const double norm = std::sqrt(sigma * sigma + 1);
  switch (prediction) {
    case Prediction::epsilon:
      return {1.0, -sigma, 1 / norm};
    case Prediction::v:
      return {1 / (norm * norm), -sigma / norm, 1 / norm};
  }
  fail("invalid prediction type {}", static_cast<int>(prediction));
}

Denoiser make_denoiser(Prediction prediction, const DiscreteSchedule& schedule,
                       DiffusionModel model) {
  if (!model) fail("make_denoiser: no model given");
  return [prediction, schedule, model = std::move(model)](std::span<const float> x, float sigma,
                                                          std::span<float> denoised) {
    if (denoised.size() != x.size()) {
      fail("denoiser: output holds {} values for a latent of {}", denoised.size(), x.size());
    }
    const DenoiserScalings s = denoiser_scalings(prediction, sigma);
    std::vector<float> scaled_x(x.size());
    for (size_t j = 0; j < x.size(); ++j) scaled_x[j] = static_cast<float>(s.c_in * x[j]);
    model(scaled_x, static_cast<float>(schedule.sigma_to_t(sigma)), denoised);
    for (size_t j = 0; j < x.size(); ++j) {
      denoised[j] = static_cast<float>(s.c_skip * x[j] + s.c_out * denoised[j]);
    }
  };
}

}  // namespace ebb
