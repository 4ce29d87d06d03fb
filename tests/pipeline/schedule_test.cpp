#include "pipeline/schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "support/sampler_fixtures.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;

using test::sampler_fixtures;

double relative_error(double value, double reference) {
  return std::abs(value - reference) / std::abs(reference);
}

TEST(DiscreteScheduleTest, ScaledLinearMatchesTheCompVisSchedule) {
  const auto reference = sampler_fixtures()["alphas_cumprod"].get<std::vector<double>>();
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  ASSERT_EQ(schedule.timesteps(), static_cast<int>(reference.size()));
  double worst = 0;
  for (int t = 0; t < schedule.timesteps(); ++t) {
    worst = std::max(worst, relative_error(schedule.alphas_cumprod(t), reference[t]));
  }
  EXPECT_LE(worst, 1e-13);
}

TEST(DiscreteScheduleTest, ScaledLinearAgreesWithDiffusersFloat32Cumprod) {
  // diffusers multiplies in float32; the exact schedule differs by its rounding, well below the
  // samplers' tolerance.
  const auto diffusers =
      sampler_fixtures()["diffusers_alphas_cumprod_f32"].get<std::vector<double>>();
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  double worst = 0;
  for (int t = 0; t < schedule.timesteps(); ++t) {
    worst = std::max(worst, relative_error(schedule.alphas_cumprod(t), diffusers[t]));
  }
  EXPECT_LE(worst, 2e-6);
}

TEST(DiscreteScheduleTest, SigmaOfTimestep) {
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  for (int t : {0, 1, 500, 999}) {
    const double a = schedule.alphas_cumprod(t);
    EXPECT_DOUBLE_EQ(schedule.sigma(t), std::sqrt((1 - a) / a));
  }
  EXPECT_DOUBLE_EQ(schedule.sigma_min(), schedule.sigma(0));
  EXPECT_DOUBLE_EQ(schedule.sigma_max(), schedule.sigma(999));
  EXPECT_NEAR(schedule.sigma_min(), 0.0291672, 1e-6);
  EXPECT_NEAR(schedule.sigma_max(), 14.614641, 1e-5);
}

TEST(DiscreteScheduleTest, SigmaToTMatchesKDiffusion) {
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  for (const auto& probe : sampler_fixtures()["schedules"]["sigma_to_t"]) {
    const double sigma = probe[0].get<double>();
    EXPECT_NEAR(schedule.sigma_to_t(sigma), probe[1].get<double>(), 1e-9) << "sigma " << sigma;
  }
}

TEST(DiscreteScheduleTest, TToSigmaMatchesKDiffusion) {
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  for (const auto& probe : sampler_fixtures()["schedules"]["t_to_sigma"]) {
    const double t = probe[0].get<double>();
    EXPECT_LE(relative_error(schedule.t_to_sigma(t), probe[1].get<double>()), 1e-12) << "t " << t;
  }
}

TEST(DiscreteScheduleTest, SigmaToTInvertsTToSigma) {
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> timestep(0.0, 999.0);
  for (int i = 0; i < 1000; ++i) {
    const double t = timestep(rng);
    EXPECT_NEAR(schedule.sigma_to_t(schedule.t_to_sigma(t)), t, 1e-8);
  }
  EXPECT_EQ(schedule.sigma_to_t(1e-6), 0.0);
  EXPECT_EQ(schedule.sigma_to_t(0.0), 0.0);
  EXPECT_EQ(schedule.sigma_to_t(1e6), 999.0);
  EXPECT_DOUBLE_EQ(schedule.t_to_sigma(-5), schedule.sigma_min());
  EXPECT_DOUBLE_EQ(schedule.t_to_sigma(2000), schedule.sigma_max());
}

TEST(DiscreteScheduleTest, RejectsBadAlphas) {
  EXPECT_THROW(DiscreteSchedule({0.5}), Error);
  EXPECT_THROW(DiscreteSchedule({0.9, 0.95}), Error);
  EXPECT_THROW(DiscreteSchedule({1.0, 0.5}), Error);
  EXPECT_THROW(DiscreteSchedule({0.9, 0.0}), Error);
  EXPECT_THROW(DiscreteSchedule({0.9, std::nan("")}), Error);
  EXPECT_THROW(DiscreteSchedule::scaled_linear(1), Error);
  EXPECT_THROW(DiscreteSchedule::scaled_linear(1000, 0.02, 0.01), Error);
  EXPECT_THROW(DiscreteSchedule::scaled_linear(1000, 0.0, 0.01), Error);
  EXPECT_THROW(DiscreteSchedule::scaled_linear().sigma(1000), Error);
  EXPECT_THROW(DiscreteSchedule::scaled_linear().alphas_cumprod(-1), Error);
  EXPECT_THROW(DiscreteSchedule::scaled_linear().sigma_to_t(std::nan("")), Error);
}

TEST(ScheduleTest, SigmasMatchKDiffusion) {
  const DiscreteSchedule model = DiscreteSchedule::scaled_linear();
  double worst = 0;
  for (const auto& golden : sampler_fixtures()["schedules"]["sigmas"]) {
    const Schedule kind = parse_schedule(golden["schedule"].get<std::string>());
    const int steps = golden["steps"].get<int>();
    const auto reference = golden["sigmas"].get<std::vector<double>>();
    const std::vector<float> sigmas = make_sigmas(kind, model, steps);
    ASSERT_EQ(sigmas.size(), reference.size()) << golden["schedule"] << " " << steps;
    EXPECT_EQ(sigmas.back(), 0.0f);
    for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
      const double error = relative_error(sigmas[i], reference[i]);
      EXPECT_LE(error, 1e-6) << golden["schedule"] << " steps " << steps << " sigma " << i;
      worst = std::max(worst, error);
    }
  }
  RecordProperty("max_relative_error", std::to_string(worst));
  std::printf("schedules: max relative error vs k-diffusion %.3g\n", worst);
}

TEST(ScheduleTest, KarrasAndExponentialEndpoints) {
  for (int steps : {2, 5, 30}) {
    const std::vector<float> karras = karras_sigmas(steps, 0.1, 10.0, 7.0);
    const std::vector<float> exponential = exponential_sigmas(steps, 0.1, 10.0);
    EXPECT_FLOAT_EQ(karras.front(), 10.0f);
    EXPECT_FLOAT_EQ(karras[steps - 1], 0.1f);
    EXPECT_FLOAT_EQ(exponential.front(), 10.0f);
    EXPECT_FLOAT_EQ(exponential[steps - 1], 0.1f);
    // Exponential: a constant ratio between neighbours.
    for (int i = 1; i + 1 < steps; ++i) {
      EXPECT_NEAR(exponential[i] / exponential[i + 1], exponential[0] / exponential[1], 1e-5);
    }
    // Karras: evenly spaced in sigma^(1/7).
    for (int i = 1; i + 1 < steps; ++i) {
      const double gap = std::pow(karras[0], 1 / 7.0) - std::pow(karras[1], 1 / 7.0);
      EXPECT_NEAR(std::pow(karras[i], 1 / 7.0) - std::pow(karras[i + 1], 1 / 7.0), gap, 1e-6);
    }
  }
}

TEST(ScheduleTest, OneStepStartsAtTheTop) {
  const DiscreteSchedule model = DiscreteSchedule::scaled_linear();
  for (Schedule kind : {Schedule::discrete, Schedule::karras, Schedule::exponential}) {
    const std::vector<float> sigmas = make_sigmas(kind, model, 1);
    ASSERT_EQ(sigmas.size(), 2u);
    EXPECT_FLOAT_EQ(sigmas[0], static_cast<float>(model.sigma_max()));
    EXPECT_EQ(sigmas[1], 0.0f);
  }
}

TEST(ScheduleTest, RejectsBadArguments) {
  const DiscreteSchedule model = DiscreteSchedule::scaled_linear();
  EXPECT_THROW(make_sigmas(Schedule::discrete, model, 0), Error);
  EXPECT_THROW(make_sigmas(Schedule::karras, model, -3), Error);
  EXPECT_THROW(karras_sigmas(4, 0.0, 10.0), Error);
  EXPECT_THROW(karras_sigmas(4, 1.0, 0.5), Error);
  EXPECT_THROW(karras_sigmas(4, 0.1, 10.0, 0.0), Error);
  EXPECT_THROW(exponential_sigmas(4, -1.0, 10.0), Error);
  EXPECT_THROW(exponential_sigmas(4, 0.1, INFINITY), Error);
}

TEST(ScheduleTest, ParsesStableDiffusionCppNames) {
  EXPECT_EQ(parse_schedule("discrete"), Schedule::discrete);
  EXPECT_EQ(parse_schedule("karras"), Schedule::karras);
  EXPECT_EQ(parse_schedule("exponential"), Schedule::exponential);
  for (Schedule kind : {Schedule::discrete, Schedule::karras, Schedule::exponential}) {
    EXPECT_EQ(parse_schedule(schedule_name(kind)), kind);
  }
  try {
    parse_schedule("Karras");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown schedule 'Karras'"));
    EXPECT_THAT(e.what(), HasSubstr("discrete, karras, exponential"));
  }
}

TEST(TimestepGridTest, DdimTrailingMatchesDiffusers) {
  for (int steps : {1, 3, 4, 7}) {
    const auto reference = sampler_fixtures()["timesteps"]["ddim_trailing/" + std::to_string(steps)]
                               .get<std::vector<int>>();
    EXPECT_EQ(ddim_trailing_timesteps(1000, steps), reference) << steps;
  }
  // Half-way values round to even, as numpy does: 1000 - 62.5 * i.
  EXPECT_EQ(ddim_trailing_timesteps(1000, 16)[1], 937);
  EXPECT_EQ(ddim_trailing_timesteps(1000, 16)[3], 811);
}

TEST(TimestepGridTest, DdimTrailingHasOneDistinctTimestepPerStep) {
  for (int steps = 1; steps <= 1000; ++steps) {
    const std::vector<int> timesteps = ddim_trailing_timesteps(1000, steps);
    ASSERT_EQ(timesteps.size(), static_cast<size_t>(steps));
    EXPECT_EQ(timesteps.front(), 999);
    EXPECT_GE(timesteps.back(), 0);
    for (size_t i = 1; i < timesteps.size(); ++i) ASSERT_LT(timesteps[i], timesteps[i - 1]);
  }
  EXPECT_THROW(ddim_trailing_timesteps(1000, 0), Error);
  EXPECT_THROW(ddim_trailing_timesteps(1000, 1001), Error);
}

TEST(TimestepGridTest, LcmMatchesDiffusers) {
  for (int steps : {1, 4, 6}) {
    const auto reference =
        sampler_fixtures()["timesteps"]["lcm/" + std::to_string(steps)].get<std::vector<int>>();
    EXPECT_EQ(lcm_timesteps(1000, steps), reference) << steps;
  }
  const std::vector<int> all = lcm_timesteps(1000, 50);
  EXPECT_EQ(all.front(), 999);
  EXPECT_EQ(all.back(), 19);
  EXPECT_THROW(lcm_timesteps(1000, 0), Error);
  EXPECT_THROW(lcm_timesteps(1000, 51), Error);
  EXPECT_THROW(lcm_timesteps(1000, 4, 0), Error);
  EXPECT_THROW(lcm_timesteps(1000, 4, 1001), Error);
}

}  // namespace
}  // namespace ebb
