#include "pipeline/a1111_parameters.h"

#include <fmt/format.h>

#include <array>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "pipeline/samplers/enum_names.h"

namespace ebb {
namespace {

constexpr std::array<EnumName<Sampler>, 8> kSamplerDisplayNames = {{
    {Sampler::euler, "Euler"},
    {Sampler::euler_a, "Euler a"},
    {Sampler::heun, "Heun"},
    {Sampler::dpm2, "DPM2"},
    {Sampler::dpmpp_2m, "DPM++ 2M"},
    {Sampler::dpmpp_2s_a, "DPM++ 2S a"},
    {Sampler::lcm, "LCM"},
    {Sampler::ddim_trailing, "DDIM"},
}};

// A1111 calls k-diffusion's evenly spaced timesteps (stable-diffusion.cpp's "discrete") "Uniform".
constexpr std::array<EnumName<Schedule>, 3> kScheduleDisplayNames = {{
    {Schedule::discrete, "Uniform"},
    {Schedule::karras, "Karras"},
    {Schedule::exponential, "Exponential"},
}};

// lcm and ddim_trailing walk their own timesteps whatever the schedule (see plan_sampling);
// "Automatic" is A1111's label for "the sampler's own".
bool sampler_ignores_schedule(Sampler sampler) {
  return sampler == Sampler::lcm || sampler == Sampler::ddim_trailing;
}

// A1111 writes a value as-is unless it holds a character that would break the "Key: value, "
// list apart, and then as a JSON string without ASCII escaping of non-ASCII characters.
std::string quote_value(const std::string& value) {
  if (value.find_first_of(",:\n") == std::string::npos) return value;
  return nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string trim_whitespace(const std::string& text) {
  constexpr std::string_view kWhitespace = " \t\n\r\v\f";
  size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string::npos) return "";
  size_t last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

}  // namespace

std::string_view sampler_display_name(Sampler sampler) {
  return enum_name<Sampler>(sampler, kSamplerDisplayNames);
}

std::string_view schedule_display_name(Schedule schedule) {
  return enum_name<Schedule>(schedule, kScheduleDisplayNames);
}

std::string a1111_parameters(const GenerationParams& p) {
  std::vector<std::pair<std::string_view, std::string>> fields = {
      {"Steps", fmt::format("{}", p.steps)},
      {"Sampler", std::string(sampler_display_name(p.sampler))},
      {"Schedule type", sampler_ignores_schedule(p.sampler)
                            ? std::string("Automatic")
                            : std::string(schedule_display_name(p.schedule))},
      {"CFG scale", fmt::format("{}", p.cfg_scale)},
      {"Seed", fmt::format("{}", p.seed)},
      {"Size", fmt::format("{}x{}", p.width, p.height)},
  };
  if (!p.model_hash.empty()) fields.emplace_back("Model hash", p.model_hash);
  if (!p.model.empty()) fields.emplace_back("Model", p.model);
  if (p.denoising_strength)
    fields.emplace_back("Denoising strength", fmt::format("{}", *p.denoising_strength));
  if (p.clip_skip > 1) fields.emplace_back("Clip skip", fmt::format("{}", p.clip_skip));
  if (!p.version.empty()) fields.emplace_back("Version", p.version);

  std::string text = p.prompt;
  if (!p.negative_prompt.empty()) text += "\nNegative prompt: " + p.negative_prompt;
  text += "\n";
  for (size_t i = 0; i < fields.size(); ++i)
    text += fmt::format("{}{}: {}", i ? ", " : "", fields[i].first, quote_value(fields[i].second));
  return trim_whitespace(text);
}

}  // namespace ebb
