#pragma once
// Turns a discrete-time diffusion model (a UNet predicting noise or v at a timestep) into the
// denoiser D(x, sigma) the samplers call, as k-diffusion's CompVisDenoiser (epsilon) and
// CompVisVDenoiser (v) do:
//   D(x, sigma) = c_skip * x + c_out * F(c_in * x, sigma_to_t(sigma)).
#include <functional>
#include <span>

#include "pipeline/samplers/sampler_io.h"
#include "pipeline/schedule.h"

namespace ebb {

enum class Prediction { epsilon, v };

struct DenoiserScalings {
  double c_skip;
  double c_out;
  double c_in;
};

// epsilon: c_skip 1, c_out -sigma, c_in 1 / sqrt(sigma^2 + 1).
// v:       c_skip 1 / (sigma^2 + 1), c_out -sigma / sqrt(sigma^2 + 1), c_in 1 / sqrt(sigma^2 + 1).
DenoiserScalings denoiser_scalings(Prediction prediction, double sigma);

// The model's raw output (noise or v) for the scaled latent at a fractional timestep.
// Classifier-free guidance goes in here (see cfg_combine).
using DiffusionModel =
    std::function<void(std::span<const float> scaled_x, float timestep, std::span<float> out)>;

// The schedule is copied into the returned denoiser.
Denoiser make_denoiser(Prediction prediction, const DiscreteSchedule& schedule,
                       DiffusionModel model);

}  // namespace ebb
