#pragma once
// The samplers of k-diffusion (Katherine Crowson's reference implementations, which
// stable-diffusion.cpp follows), with its defaults: no churn, eta = 1 for the ancestral ones.
//
// Each walks sigmas[0] > sigmas[1] > ... > sigmas[steps] >= 0, updating the latent x in place
// (x starts at the noise level sigmas[0]). Elementwise arithmetic is done in double and stored
// as float.
#include <span>

#include "pipeline/samplers/sampler_io.h"

namespace ebb {

// One model call per step.
void sample_euler(std::span<float> x, std::span<const float> sigmas, const SamplerCallbacks& io);
// Heun's second-order method: two model calls per step but the last (which is Euler).
void sample_heun(std::span<float> x, std::span<const float> sigmas, const SamplerCallbacks& io);
// DPM-Solver-2 style midpoint (in log sigma) method: two calls per step but the last.
void sample_dpm2(std::span<float> x, std::span<const float> sigmas, const SamplerCallbacks& io);
// DPM-Solver++(2M): second-order multistep, one call per step.
void sample_dpmpp_2m(std::span<float> x, std::span<const float> sigmas, const SamplerCallbacks& io);

// Ancestral: after each step but the last, io.noise is drawn once and added.
void sample_euler_ancestral(std::span<float> x, std::span<const float> sigmas,
                            const SamplerCallbacks& io);
// DPM-Solver++(2S) ancestral: two calls per step but the last.
void sample_dpmpp_2s_ancestral(std::span<float> x, std::span<const float> sigmas,
                               const SamplerCallbacks& io);

}  // namespace ebb
