#pragma once
// What a sampler exchanges with the rest of the pipeline. Latents are flat float arrays in
// k-diffusion's convention: at noise level sigma, x = x0 + sigma * noise.
#include <functional>
#include <span>

namespace ebb {

// denoised = D(x, sigma): the model's estimate of the clean latent. Classifier-free guidance
// happens inside (the pipeline combines the conditional and unconditional predictions).
using Denoiser =
    std::function<void(std::span<const float> x, float sigma, std::span<float> denoised)>;

// Fills its argument with standard normal noise. Ancestral samplers draw one latent-sized tensor
// per step, in k-diffusion's order, so a torch-compatible stream reproduces torch's results.
using NoiseSource = std::function<void(std::span<float> noise)>;

struct StepInfo {
  int step;                         // 0-based
  int steps;                        // total
  float sigma;                      // noise level of this step's first model call
  std::span<const float> x;         // the latent before the step
  std::span<const float> denoised;  // the model's estimate of x0 at this step
};
using StepCallback = std::function<void(const StepInfo&)>;

struct SamplerCallbacks {
  Denoiser denoise;      // required
  NoiseSource noise;     // required by euler_a, dpm++2s_a and lcm
  StepCallback on_step;  // optional progress report, called once per step
};

}  // namespace ebb
