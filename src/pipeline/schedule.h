#pragma once
// Noise schedules of a discrete-time DDPM model (SD 1.x/2.x/XL) in the noise-level form the
// samplers use: sigma(t) = sqrt((1 - alphas_cumprod[t]) / alphas_cumprod[t]), the latent being
// x = x0 + sigma * noise (k-diffusion's convention).
#include <cstddef>
#include <string_view>
#include <vector>

namespace ebb {

// The noise levels of the model's training timesteps, and the mapping between a continuous
// timestep and a noise level (linear interpolation of log sigma between neighbouring timesteps,
// as k-diffusion's DiscreteSchedule does; the UNet is fed the fractional timestep).
class DiscreteSchedule {
 public:
  // SD's "scaled_linear" betas: sqrt(beta) spaced linearly from sqrt(beta_start) to sqrt(beta_end).
  static DiscreteSchedule scaled_linear(int timesteps = 1000, double beta_start = 0.00085,
                                        double beta_end = 0.012);

  // alphas_cumprod must hold at least two values, each in (0, 1), strictly decreasing.
  explicit DiscreteSchedule(std::vector<double> alphas_cumprod);

  int timesteps() const { return static_cast<int>(alphas_cumprod_.size()); }
  double alphas_cumprod(int t) const;
  double sigma(int t) const;  // sigma of training timestep t, 0 <= t < timesteps()
  double sigma_min() const { return sigmas_.front(); }
  double sigma_max() const { return sigmas_.back(); }

  // t is clamped to [0, timesteps() - 1].
  double t_to_sigma(double t) const;
  // Noise levels outside [sigma_min, sigma_max] map to the first or last timestep.
  double sigma_to_t(double sigma) const;

 private:
  size_t index(int t) const;  // checked

  std::vector<double> alphas_cumprod_;
  std::vector<double> sigmas_;
  std::vector<double> log_sigmas_;
};

enum class Schedule { discrete, karras, exponential };

// stable-diffusion.cpp's spellings: "discrete", "karras", "exponential".
Schedule parse_schedule(std::string_view name);
std::string_view schedule_name(Schedule schedule);

// Every sigma list has steps + 1 entries, from the highest noise level down to a final 0.
// steps < 1 is an ebb::Error.

// Timesteps spaced evenly over [timesteps - 1, 0] (k-diffusion's DiscreteSchedule.get_sigmas,
// stable-diffusion.cpp's "discrete").
std::vector<float> discrete_sigmas(const DiscreteSchedule& schedule, int steps);
// Karras et al. (2022): evenly spaced in sigma^(1/rho).
std::vector<float> karras_sigmas(int steps, double sigma_min, double sigma_max, double rho = 7.0);
// Evenly spaced in log sigma.
std::vector<float> exponential_sigmas(int steps, double sigma_min, double sigma_max);
// The named schedule over the model's [sigma_min, sigma_max].
std::vector<float> make_sigmas(Schedule kind, const DiscreteSchedule& schedule, int steps);

// diffusers' DDIMScheduler with timestep_spacing="trailing": round(T - i * T / steps) - 1 for
// i in [0, steps), rounding half to even as numpy does.
std::vector<int> ddim_trailing_timesteps(int train_timesteps, int steps);

// diffusers' LCMScheduler: `steps` timesteps picked at evenly spaced indices of the distillation
// grid k * j - 1 (j = original_steps .. 1, k = train_timesteps / original_steps).
std::vector<int> lcm_timesteps(int train_timesteps, int steps, int original_steps = 50);

}  // namespace ebb
