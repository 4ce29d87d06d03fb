#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "pipeline/samplers/denoiser.h"
#include "pipeline/samplers/discrete_time_samplers.h"
#include "pipeline/samplers/guidance.h"
#include "pipeline/samplers/k_diffusion_samplers.h"
#include "pipeline/samplers/sampler.h"
#include "pipeline/schedule.h"
#include "support/sampler_fixtures.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;

// The agreement asked of every sampler, against k-diffusion / diffusers run in float64 and in
// float32: max |ours - reference| / max |reference| over the latent.
constexpr double kTolerance = 1e-5;

using test::sampler_fixtures;

// The fixture's toy denoiser: D(x, sigma) = tanh(a x / sqrt(1 + sigma^2) + b sigma).
Denoiser toy_denoiser() {
  const double a = sampler_fixtures()["toy"]["a"].get<double>();
  const double b = sampler_fixtures()["toy"]["b"].get<double>();
  return [a, b](std::span<const float> x, float sigma, std::span<float> denoised) {
    const double c_in = 1 / std::sqrt(1.0 + static_cast<double>(sigma) * sigma);
    for (size_t j = 0; j < x.size(); ++j) {
      denoised[j] = static_cast<float>(std::tanh(a * x[j] * c_in + b * sigma));
    }
  };
}

// Replays the fixture's pre-drawn noise in order.
struct NoiseReplay {
  std::vector<std::vector<float>> bank;
  size_t drawn = 0;

  NoiseReplay() {
    for (const auto& draw : sampler_fixtures()["latent"]["noise_bank"]) {
      const auto values = draw.get<std::vector<double>>();
      bank.emplace_back(values.begin(), values.end());
    }
  }
  NoiseSource source() {
    return [this](std::span<float> noise) {
      ASSERT_LT(drawn, bank.size());
      ASSERT_EQ(noise.size(), bank[drawn].size());
      std::copy(bank[drawn].begin(), bank[drawn].end(), noise.begin());
      ++drawn;
    };
  }
};

std::vector<double> initial_noise() {
  return sampler_fixtures()["latent"]["initial_noise"].get<std::vector<double>>();
}

double relative_error(std::span<const float> ours, const std::vector<double>& reference) {
  double diff = 0;
  double scale = 0;
  for (size_t j = 0; j < reference.size(); ++j) {
    diff = std::max(diff, std::abs(ours[j] - reference[j]));
    scale = std::max(scale, std::abs(reference[j]));
  }
  return diff / scale;
}

std::string run_label(const nlohmann::json& run) {
  std::string label = run["sampler"].get<std::string>() + " steps " +
                      std::to_string(run["steps"].get<int>()) + " " +
                      run["dtype"].get<std::string>();
  if (run.contains("schedule")) label += " " + run["schedule"].get<std::string>();
  if (run.contains("prediction")) label += " " + run["prediction"].get<std::string>();
  return label;
}

// Runs one fixture case; returns our final latent and how much noise it drew.
struct RunResult {
  std::vector<float> x;
  size_t noise_draws;
};

RunResult run_case(const nlohmann::json& run) {
  const Sampler sampler = parse_sampler(run["sampler"].get<std::string>());
  const bool f32 = run["dtype"].get<std::string>() == "float32";
  const std::vector<double> noise = initial_noise();
  NoiseReplay replay;
  SamplerCallbacks io{toy_denoiser(), replay.source(), {}};
  std::vector<float> x(noise.size());

  SamplingPlan plan;
  if (run.contains("sigmas")) {
    // k-diffusion cases: the reference's own sigmas, so that only the sampler is under test.
    const auto sigmas = run["sigmas"].get<std::vector<double>>();
    plan = SamplingPlan{sampler, std::vector<float>(sigmas.begin(), sigmas.end()), {}, {}, 0.0f};
    for (size_t j = 0; j < x.size(); ++j) {
      x[j] = f32 ? static_cast<float>(noise[j]) * plan.sigmas[0]
                 : static_cast<float>(noise[j] * sigmas[0]);
    }
  } else {
    // diffusers cases: our own plan end to end.
    plan = plan_sampling(sampler, Schedule::discrete, DiscreteSchedule::scaled_linear(),
                         run["steps"].get<int>());
    for (size_t j = 0; j < x.size(); ++j) {
      x[j] = static_cast<float>(noise[j] * plan.initial_noise_scale);
    }
  }
  sample(plan, x, io);
  return {x, replay.drawn};
}

TEST(SamplerFixtureTest, EverySamplerMatchesItsReference) {
  std::map<std::string, double> worst;  // by sampler and dtype
  int checked = 0;
  for (const auto& run : sampler_fixtures()["runs"]) {
    const RunResult ours = run_case(run);
    const auto reference = run["result"].get<std::vector<double>>();
    ASSERT_EQ(ours.x.size(), reference.size());
    EXPECT_EQ(ours.noise_draws, run["noise_draws"].get<size_t>()) << run_label(run);
    const double error = relative_error(ours.x, reference);
    EXPECT_LE(error, kTolerance) << run_label(run);
    double& w = worst[run["sampler"].get<std::string>() + " vs " + run["dtype"].get<std::string>()];
    w = std::max(w, error);
    ++checked;
  }
  EXPECT_EQ(checked, 64);
  for (const auto& [name, error] : worst)
    std::printf("%-28s max rel error %.3g\n", name.c_str(), error);
}

TEST(SamplerFixtureTest, PlansFollowDiffusersTimesteps) {
  const DiscreteSchedule model = DiscreteSchedule::scaled_linear();
  const SamplingPlan lcm = plan_sampling(Sampler::lcm, Schedule::karras, model, 4);
  EXPECT_EQ(lcm.timesteps, sampler_fixtures()["timesteps"]["lcm/4"].get<std::vector<int>>());
  ASSERT_EQ(lcm.sigmas.size(), 5u);
  EXPECT_FLOAT_EQ(lcm.sigmas[1], static_cast<float>(model.sigma(759)));
  EXPECT_EQ(lcm.sigmas.back(), 0.0f);

  const SamplingPlan ddim = plan_sampling(Sampler::ddim_trailing, Schedule::karras, model, 3);
  ASSERT_EQ(ddim.sigmas.size(), 4u);
  EXPECT_FLOAT_EQ(ddim.sigmas[2], static_cast<float>(model.sigma(332)));
  // diffusers lands 666 on 666 - 1000 / 3 = 333, and the last step on timestep 0.
  ASSERT_EQ(ddim.landing_sigmas.size(), 3u);
  EXPECT_FLOAT_EQ(ddim.landing_sigmas[1], static_cast<float>(model.sigma(333)));
  EXPECT_FLOAT_EQ(ddim.landing_sigmas[2], static_cast<float>(model.sigma(0)));
  EXPECT_FLOAT_EQ(ddim.initial_noise_scale, std::sqrt(ddim.sigmas[0] * ddim.sigmas[0] + 1.0f));

  const SamplingPlan euler = plan_sampling(Sampler::euler, Schedule::karras, model, 6);
  EXPECT_EQ(euler.sigmas, karras_sigmas(6, model.sigma_min(), model.sigma_max()));
  EXPECT_EQ(euler.initial_noise_scale, euler.sigmas[0]);
}

constexpr Sampler kAllSamplers[] = {Sampler::euler, Sampler::euler_a,      Sampler::heun,
                                    Sampler::dpm2,  Sampler::dpmpp_2m,     Sampler::dpmpp_2s_a,
                                    Sampler::lcm,   Sampler::ddim_trailing};

TEST(SamplerTest, ModelCallsAndProgressPerStep) {
  const DiscreteSchedule model = DiscreteSchedule::scaled_linear();
  constexpr int kSteps = 5;
  // Second-order samplers call the model twice per step but the last.
  const std::map<Sampler, int> expected_calls = {
      {Sampler::euler, kSteps},        {Sampler::euler_a, kSteps},
      {Sampler::heun, 2 * kSteps - 1}, {Sampler::dpm2, 2 * kSteps - 1},
      {Sampler::dpmpp_2m, kSteps},     {Sampler::dpmpp_2s_a, 2 * kSteps - 1},
      {Sampler::lcm, kSteps},          {Sampler::ddim_trailing, kSteps}};
  for (Sampler sampler : kAllSamplers) {
    const SamplingPlan plan = plan_sampling(sampler, Schedule::karras, model, kSteps);
    int calls = 0;
    std::vector<int> reported;
    const Denoiser toy = toy_denoiser();
    SamplerCallbacks io{[&](std::span<const float> x, float sigma, std::span<float> out) {
                          ++calls;
                          toy(x, sigma, out);
                        },
                        [](std::span<float> noise) { std::fill(noise.begin(), noise.end(), 0.5f); },
                        [&](const StepInfo& info) {
                          EXPECT_EQ(info.steps, kSteps);
                          EXPECT_EQ(info.sigma, plan.sigmas[info.step]);
                          EXPECT_EQ(info.x.size(), 8u);
                          EXPECT_EQ(info.denoised.size(), 8u);
                          reported.push_back(info.step);
                        }};
    std::vector<float> x(8, 1.0f);
    sample(plan, x, io);
    EXPECT_EQ(calls, expected_calls.at(sampler)) << sampler_name(sampler);
    EXPECT_EQ(reported, (std::vector<int>{0, 1, 2, 3, 4})) << sampler_name(sampler);
  }
}

TEST(SamplerTest, APerfectDenoiserIsReachedExactly) {
  // If D always returns the clean latent, the k-diffusion samplers end on it, noise or not.
  const std::vector<float> clean = {0.25f, -1.5f, 3.0f, 0.0f};
  const Denoiser perfect = [&](std::span<const float>, float, std::span<float> out) {
    std::copy(clean.begin(), clean.end(), out.begin());
  };
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  const NoiseSource noise = [&](std::span<float> out) {
    for (float& v : out) v = normal(rng);
  };
  const DiscreteSchedule model = DiscreteSchedule::scaled_linear();
  for (Sampler sampler : {Sampler::euler, Sampler::euler_a, Sampler::heun, Sampler::dpm2,
                          Sampler::dpmpp_2m, Sampler::dpmpp_2s_a}) {
    const SamplingPlan plan = plan_sampling(sampler, Schedule::exponential, model, 7);
    std::vector<float> x(clean.size());
    for (float& v : x) v = normal(rng) * plan.initial_noise_scale;
    sample(plan, x, SamplerCallbacks{perfect, noise, {}});
    for (size_t j = 0; j < x.size(); ++j) {
      EXPECT_NEAR(x[j], clean[j], 1e-5) << sampler_name(sampler) << " " << j;
    }
  }
}

TEST(SamplerTest, ParsesStableDiffusionCppNames) {
  const char* names[] = {"euler",   "euler_a",   "heun", "dpm2",
                         "dpm++2m", "dpm++2s_a", "lcm",  "ddim_trailing"};
  for (size_t i = 0; i < std::size(names); ++i) {
    EXPECT_EQ(parse_sampler(names[i]), kAllSamplers[i]);
    EXPECT_EQ(sampler_name(kAllSamplers[i]), names[i]);
  }
  try {
    parse_sampler("dpmpp_2m");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown sampler 'dpmpp_2m'"));
    EXPECT_THAT(e.what(),
                HasSubstr("euler, euler_a, heun, dpm2, dpm++2m, dpm++2s_a, lcm, ddim_trailing"));
  }
}

TEST(SamplerTest, RejectsBadInput) {
  std::vector<float> x(4, 1.0f);
  const SamplerCallbacks io{toy_denoiser(), [](std::span<float>) {}, {}};
  const std::vector<float> good = {10.0f, 1.0f, 0.0f};
  auto expect_error = [&](auto&& call, const char* message) {
    try {
      call();
      ADD_FAILURE() << "expected an error containing: " << message;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(message));
    }
  };
  expect_error([&] { sample_euler(x, std::vector<float>{10.0f}, io); }, "at least 2 sigmas");
  expect_error(
      [&] {
        sample_heun(x, std::vector<float>{1.0f, 2.0f, 0.0f}, io);
      },
      "decrease strictly");
  expect_error(
      [&] {
        sample_dpm2(x, std::vector<float>{5.0f, 5.0f, 0.0f}, io);
      },
      "decrease strictly");
  expect_error(
      [&] {
        sample_dpmpp_2m(x, std::vector<float>{NAN, 1.0f, 0.0f}, io);
      },
      "sigma[0] is nan");
  expect_error(
      [&] {
        sample_euler(x, std::vector<float>{1.0f, -1.0f}, io);
      },
      "final sigma -1 is negative");
  expect_error([&] { sample_euler(std::span<float>(), good, io); }, "latent is empty");
  expect_error([&] { sample_euler(x, good, SamplerCallbacks{}); }, "no denoiser");
  expect_error(
      [&] {
        sample_euler_ancestral(x, good, SamplerCallbacks{toy_denoiser(), {}, {}});
      },
      "no noise source");
  expect_error(
      [&] {
        sample_dpmpp_2s_ancestral(x, good, SamplerCallbacks{toy_denoiser(), {}, {}});
      },
      "no noise source");
  expect_error([&] { sample_lcm(x, good, std::vector<int>{999}, io); },
               "1 timesteps given for 2 steps");
  expect_error([&] { sample_ddim(x, good, std::vector<float>{1.0f}, io); },
               "1 landing sigmas given for 2 steps");
  expect_error(
      [&] {
        sample_ddim(x, good, std::vector<float>{11.0f, 0.5f}, io);
      },
      "landing sigma[0] = 11");

  const DiscreteSchedule model = DiscreteSchedule::scaled_linear();
  for (Sampler sampler : kAllSamplers) {
    expect_error([&] { plan_sampling(sampler, Schedule::discrete, model, 0); },
                 "steps must be at least 1");
  }
  expect_error([&] { plan_sampling(Sampler::lcm, Schedule::discrete, model, 60); },
               "60 steps exceed");
  expect_error([&] { plan_sampling(Sampler::ddim_trailing, Schedule::discrete, model, 1001); },
               "1001 steps exceed");
}

TEST(SamplerTest, OneStepToZeroDrawsNoNoise) {
  std::vector<float> x(4, 3.0f);
  const std::vector<float> sigmas = {3.0f, 0.0f};
  sample_euler_ancestral(x, sigmas, SamplerCallbacks{toy_denoiser(), {}, {}});
  sample_dpmpp_2s_ancestral(x, sigmas, SamplerCallbacks{toy_denoiser(), {}, {}});
  sample_lcm(x, sigmas, std::vector<int>{999}, SamplerCallbacks{toy_denoiser(), {}, {}});
}

// The first `steps` steps of a plan, ending on a nonzero sigma: run before plan_from_step(steps)
// it must hand over the latent the uninterrupted run has there.
SamplingPlan plan_head(const SamplingPlan& plan, int steps) {
  const auto first = [](const auto& v, int count) {
    return v.empty() ? v : std::decay_t<decltype(v)>(v.begin(), v.begin() + count);
  };
  return {plan.sampler, first(plan.sigmas, steps + 1), first(plan.landing_sigmas, steps),
          first(plan.timesteps, steps), plan.initial_noise_scale};
}

TEST(SamplerTest, EverySamplerResumesMidPlan) {
  const DiscreteSchedule model = DiscreteSchedule::scaled_linear();
  constexpr int kSteps = 6;
  constexpr int kSplit = 2;
  for (Sampler sampler : kAllSamplers) {
    SCOPED_TRACE(std::string(sampler_name(sampler)));
    const SamplingPlan plan = plan_sampling(sampler, Schedule::karras, model, kSteps);
    const SamplingPlan tail = plan_from_step(plan, kSplit);
    ASSERT_EQ(tail.sigmas.size(), kSteps - kSplit + 1u);
    EXPECT_EQ(tail.sigmas.front(), plan.sigmas[kSplit]);
    const bool variance_preserving = sampler == Sampler::lcm || sampler == Sampler::ddim_trailing;
    EXPECT_FLOAT_EQ(tail.initial_noise_scale,
                    variance_preserving ? std::sqrt(plan.sigmas[kSplit] * plan.sigmas[kSplit] + 1)
                                        : plan.sigmas[kSplit]);
    auto run = [&](const std::vector<const SamplingPlan*>& parts) {
      std::mt19937 rng(5);
      std::normal_distribution<float> normal;
      SamplerCallbacks io{toy_denoiser(), [&](std::span<float> noise) {
                            for (float& v : noise) v = normal(rng);
                          }};
      std::vector<float> x(8);
      for (float& v : x) v = normal(rng) * plan.initial_noise_scale;
      for (const SamplingPlan* part : parts) sample(*part, x, io);
      return x;
    };
    const SamplingPlan head = plan_head(plan, kSplit);
    const std::vector<float> whole = run({&plan});
    const std::vector<float> resumed = run({&head, &tail});
    // DPM++(2M) restarts first order, as diffusers' multistep schedulers do mid-plan; every
    // other sampler carries no state from step to step.
    if (sampler == Sampler::dpmpp_2m)
      EXPECT_NE(resumed, whole);
    else
      EXPECT_EQ(resumed, whole);
  }
}

TEST(SamplerTest, StrengthTakesDiffusersStepCount) {
  EXPECT_EQ(strength_steps(4, 0.6), 2);  // floor(2.4)
  EXPECT_EQ(strength_steps(4, 0.75), 3);
  EXPECT_EQ(strength_steps(10, 0.7), 7);  // 10 * 0.7 is 7.000000000000001 in double
  EXPECT_EQ(strength_steps(20, 1.0), 20);
  EXPECT_THROW(strength_steps(4, 0.2), Error);  // floor(0.8) = 0 steps
  EXPECT_THROW(strength_steps(4, 1.5), Error);
  EXPECT_THROW(strength_steps(4, -0.1), Error);
  EXPECT_THROW(strength_steps(4, NAN), Error);
  const SamplingPlan plan =
      plan_sampling(Sampler::euler, Schedule::discrete, DiscreteSchedule::scaled_linear(), 4);
  EXPECT_THROW(plan_from_step(plan, 4), Error);
  EXPECT_THROW(plan_from_step(plan, -1), Error);
  EXPECT_EQ(plan_from_step(plan, 0).sigmas, plan.sigmas);
}

TEST(DenoiserTest, MatchesKDiffusionCompVisWrappers) {
  const double a = sampler_fixtures()["toy"]["wrap_a"].get<double>();
  const double b = sampler_fixtures()["toy"]["wrap_b"].get<double>();
  const DiffusionModel unet = [a, b](std::span<const float> x, float t, std::span<float> out) {
    for (size_t j = 0; j < x.size(); ++j) out[j] = static_cast<float>(std::tanh(a * x[j] + b * t));
  };
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  const Denoiser eps = make_denoiser(Prediction::epsilon, schedule, unet);
  const Denoiser v = make_denoiser(Prediction::v, schedule, unet);
  double worst = 0;
  for (const auto& golden : sampler_fixtures()["denoiser_wrappers"]) {
    const auto x64 = golden["x"].get<std::vector<double>>();
    const auto reference = golden["denoised"].get<std::vector<double>>();
    const std::vector<float> x(x64.begin(), x64.end());
    std::vector<float> out(x.size());
    const bool is_eps = golden["prediction"].get<std::string>() == "epsilon";
    (is_eps ? eps : v)(x, golden["sigma"].get<float>(), out);
    const double error = relative_error(out, reference);
    EXPECT_LE(error, 1e-6) << golden["prediction"] << " sigma " << golden["sigma"];
    worst = std::max(worst, error);
  }
  std::printf("denoiser wrappers: max rel error vs k-diffusion %.3g\n", worst);
}

TEST(DenoiserTest, ScalingsOfBothParametrisations) {
  const DenoiserScalings eps = denoiser_scalings(Prediction::epsilon, 2.0);
  EXPECT_DOUBLE_EQ(eps.c_skip, 1.0);
  EXPECT_DOUBLE_EQ(eps.c_out, -2.0);
  EXPECT_DOUBLE_EQ(eps.c_in, 1 / std::sqrt(5.0));
  const DenoiserScalings v = denoiser_scalings(Prediction::v, 2.0);
  EXPECT_DOUBLE_EQ(v.c_skip, 0.2);
  EXPECT_DOUBLE_EQ(v.c_out, -2 / std::sqrt(5.0));
  EXPECT_DOUBLE_EQ(v.c_in, 1 / std::sqrt(5.0));
}

TEST(DenoiserTest, RejectsMissingModelAndWrongSizes) {
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  EXPECT_THROW(make_denoiser(Prediction::epsilon, schedule, nullptr), Error);
  const Denoiser d = make_denoiser(Prediction::v, schedule,
                                   [](std::span<const float>, float, std::span<float>) {});
  std::vector<float> x(4), out(3);
  EXPECT_THROW(d(x, 1.0f, out), Error);
}

TEST(GuidanceTest, CfgCombineMatchesTheFormula) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  std::vector<float> uncond(100), cond(100), out(100);
  for (float& v : uncond) v = normal(rng);
  for (float& v : cond) v = normal(rng);
  for (float scale : {0.0f, 1.0f, 7.5f, -2.0f}) {
    cfg_combine(uncond, cond, scale, out);
    for (size_t j = 0; j < out.size(); ++j) {
      EXPECT_NEAR(out[j], uncond[j] + scale * (cond[j] - uncond[j]), 1e-5);
    }
  }
  // In place, over the unconditional prediction.
  std::vector<float> in_place = uncond;
  cfg_combine(in_place, cond, 7.5f, in_place);
  cfg_combine(uncond, cond, 7.5f, out);
  EXPECT_EQ(in_place, out);
  std::vector<float> short_out(99);
  EXPECT_THROW(cfg_combine(uncond, cond, 7.5f, short_out), Error);
  EXPECT_THROW(cfg_combine(uncond, std::span<const float>(cond).first(50), 7.5f, out), Error);
}

}  // namespace
}  // namespace ebb
