#include "pipeline/schedule.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "pipeline/samplers/enum_names.h"

namespace ebb {
namespace {

constexpr std::array<EnumName<Schedule>, 3> kScheduleNames = {{
    {Schedule::discrete, "discrete"},
    {Schedule::karras, "karras"},
    {Schedule::exponential, "exponential"},
}};

void check_steps(std::string_view what, int steps) {
  if (steps < 1) fail("{}: steps must be at least 1, got {}", what, steps);
}

void check_sigma_range(std::string_view what, double sigma_min, double sigma_max) {
  if (!(sigma_min > 0) || !std::isfinite(sigma_max) || !(sigma_min <= sigma_max)) {
    fail("{}: need 0 < sigma_min <= sigma_max < inf, got sigma_min {} and sigma_max {}", what,
         sigma_min, sigma_max);
  }
}

// i-th of n points spaced evenly from `from` to `to` inclusive (n == 1 gives `from`).
double evenly_spaced(double from, double to, int i, int n) {
  if (n == 1) return from;
  return from + (to - from) * static_cast<double>(i) / static_cast<double>(n - 1);
}

std::vector<float> with_final_zero(std::vector<float> sigmas) {
  sigmas.push_back(0.0f);
  return sigmas;
}

}  // namespace

DiscreteSchedule DiscreteSchedule::scaled_linear(int timesteps, double beta_start,
                                                 double beta_end) {
  if (timesteps < 2) fail("scaled_linear schedule: need at least 2 timesteps, got {}", timesteps);
  if (!(beta_start > 0) || !(beta_start <= beta_end) || !(beta_end < 1)) {
    fail("scaled_linear schedule: need 0 < beta_start <= beta_end < 1, got {} and {}", beta_start,
         beta_end);
  }
  std::vector<double> alphas_cumprod(static_cast<size_t>(timesteps));
  double product = 1.0;
  for (int t = 0; t < timesteps; ++t) {
    const double sqrt_beta =
        evenly_spaced(std::sqrt(beta_start), std::sqrt(beta_end), t, timesteps);
    product *= 1.0 - sqrt_beta * sqrt_beta;
    alphas_cumprod[static_cast<size_t>(t)] = product;
  }
  return DiscreteSchedule(std::move(alphas_cumprod));
}

DiscreteSchedule::DiscreteSchedule(std::vector<double> alphas_cumprod)
    : alphas_cumprod_(std::move(alphas_cumprod)) {
  if (alphas_cumprod_.size() < 2) {
    fail("discrete schedule: need at least 2 alphas_cumprod values, got {}",
         alphas_cumprod_.size());
  }
  for (size_t t = 0; t < alphas_cumprod_.size(); ++t) {
    const double a = alphas_cumprod_[t];
    if (!(a > 0 && a < 1))
      fail("discrete schedule: alphas_cumprod[{}] = {} is not in (0, 1)", t, a);
    if (t > 0 && !(a < alphas_cumprod_[t - 1])) {
      fail("discrete schedule: alphas_cumprod must decrease, but [{}] = {} follows {}", t, a,
           alphas_cumprod_[t - 1]);
    }
    sigmas_.push_back(std::sqrt((1.0 - a) / a));
    log_sigmas_.push_back(std::log(sigmas_.back()));
  }
}

size_t DiscreteSchedule::index(int t) const {
  if (t < 0 || t >= timesteps()) fail("timestep {} is outside [0, {})", t, timesteps());
  return static_cast<size_t>(t);
}

double DiscreteSchedule::alphas_cumprod(int t) const {
  return alphas_cumprod_[index(t)];
}

double DiscreteSchedule::sigma(int t) const {
  return sigmas_[index(t)];
}

double DiscreteSchedule::t_to_sigma(double t) const {
  if (std::isnan(t)) fail("t_to_sigma: timestep is NaN");
  t = std::clamp(t, 0.0, static_cast<double>(timesteps() - 1));
  const double low = std::floor(t);
  const double w = t - low;
  const auto i = static_cast<size_t>(low);
  const size_t j = w > 0 ? i + 1 : i;
  return std::exp((1.0 - w) * log_sigmas_[i] + w * log_sigmas_[j]);
}

double DiscreteSchedule::sigma_to_t(double sigma) const {
  if (std::isnan(sigma)) fail("sigma_to_t: sigma is NaN");
  const double log_sigma = std::log(sigma);
  // The interval [low, low + 1] whose log sigmas bracket log_sigma, clamped to the table.
  const auto above = std::upper_bound(log_sigmas_.begin(), log_sigmas_.end(), log_sigma);
  const size_t low = std::min<size_t>(
      above == log_sigmas_.begin() ? 0 : static_cast<size_t>(above - log_sigmas_.begin() - 1),
      log_sigmas_.size() - 2);
  const double w = std::clamp(
      (log_sigmas_[low] - log_sigma) / (log_sigmas_[low] - log_sigmas_[low + 1]), 0.0, 1.0);
  return static_cast<double>(low) + w;
}

Schedule parse_schedule(std::string_view name) {
  return parse_enum_name<Schedule>("schedule", name, kScheduleNames);
}

std::string_view schedule_name(Schedule schedule) {
  return enum_name<Schedule>(schedule, kScheduleNames);
}

std::vector<float> discrete_sigmas(const DiscreteSchedule& schedule, int steps) {
  check_steps("discrete schedule", steps);
  const double t_max = schedule.timesteps() - 1;
  std::vector<float> sigmas;
  for (int i = 0; i < steps; ++i) {
    sigmas.push_back(static_cast<float>(schedule.t_to_sigma(evenly_spaced(t_max, 0, i, steps))));
  }
  return with_final_zero(std::move(sigmas));
}

std::vector<float> karras_sigmas(int steps, double sigma_min, double sigma_max, double rho) {
  check_steps("karras schedule", steps);
  check_sigma_range("karras schedule", sigma_min, sigma_max);
  if (!(rho > 0) || !std::isfinite(rho)) fail("karras schedule: rho must be positive, got {}", rho);
  const double min_root = std::pow(sigma_min, 1.0 / rho);
  const double max_root = std::pow(sigma_max, 1.0 / rho);
  std::vector<float> sigmas;
  for (int i = 0; i < steps; ++i) {
    sigmas.push_back(
        static_cast<float>(std::pow(evenly_spaced(max_root, min_root, i, steps), rho)));
  }
  return with_final_zero(std::move(sigmas));
}

std::vector<float> exponential_sigmas(int steps, double sigma_min, double sigma_max) {
  check_steps("exponential schedule", steps);
  check_sigma_range("exponential schedule", sigma_min, sigma_max);
  std::vector<float> sigmas;
  for (int i = 0; i < steps; ++i) {
    sigmas.push_back(static_cast<float>(
        std::exp(evenly_spaced(std::log(sigma_max), std::log(sigma_min), i, steps))));
  }
  return with_final_zero(std::move(sigmas));
}

std::vector<float> make_sigmas(Schedule kind, const DiscreteSchedule& schedule, int steps) {
  switch (kind) {
    case Schedule::discrete:
      return discrete_sigmas(schedule, steps);
    case Schedule::karras:
      return karras_sigmas(steps, schedule.sigma_min(), schedule.sigma_max());
    case Schedule::exponential:
      return exponential_sigmas(steps, schedule.sigma_min(), schedule.sigma_max());
  }
  fail("invalid schedule {}", static_cast<int>(kind));
}

std::vector<int> ddim_trailing_timesteps(int train_timesteps, int steps) {
  check_steps("ddim_trailing", steps);
  if (steps > train_timesteps) {
    fail("ddim_trailing: {} steps exceed the model's {} timesteps", steps, train_timesteps);
  }
  const double ratio = static_cast<double>(train_timesteps) / steps;
  std::vector<int> timesteps;
  for (int i = 0; i < steps; ++i) {
    // nearbyint under the default rounding mode rounds half to even, as numpy's round.
    timesteps.push_back(static_cast<int>(std::nearbyint(train_timesteps - i * ratio)) - 1);
  }
  return timesteps;
}

std::vector<int> lcm_timesteps(int train_timesteps, int steps, int original_steps) {
  check_steps("lcm", steps);
  if (original_steps < 1 || original_steps > train_timesteps) {
    fail("lcm: original_steps must be in [1, {}], got {}", train_timesteps, original_steps);
  }
  if (steps > original_steps) {
    fail("lcm: {} steps exceed the {} steps of the distillation schedule", steps, original_steps);
  }
  const int spacing = train_timesteps / original_steps;
  const double stride = static_cast<double>(original_steps) / steps;
  std::vector<int> timesteps;
  for (int i = 0; i < steps; ++i) {
    const int index = static_cast<int>(std::floor(i * stride));  // into the grid, highest first
    timesteps.push_back((original_steps - index) * spacing - 1);
  }
  return timesteps;
}

}  // namespace ebb
