#pragma once
// The generation parameters as AUTOMATIC1111's web UI writes them into the "parameters" text
// chunk of its PNGs ("infotext"), so images made by Ebb can be read back by the UIs, galleries
// and tools that parse that format:
//
//   a photo of a cat
//   Negative prompt: blurry
//   Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 512x512, ...
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pipeline/samplers/sampler.h"
#include "pipeline/schedule.h"

namespace ebb {

struct GenerationParams {
  std::string prompt;
  std::string negative_prompt;  // no "Negative prompt:" line when empty
  int steps = 20;
  Sampler sampler = Sampler::euler_a;
  Schedule schedule = Schedule::discrete;
  double cfg_scale = 7.0;
  int64_t seed = 42;
  int width = 512;
  int height = 512;
  std::string model_hash;  // A1111's short hash (10 hex digits of the file's SHA-256); optional
  std::string model;       // checkpoint name without directory or extension; optional
  int clip_skip = 1;       // written only above 1, as A1111 does
  std::optional<double> denoising_strength;  // img2img only
  std::string version;                       // e.g. "ebb 0.1.0"; optional
};

// A1111's names for the samplers and schedules ("Euler a", "DPM++ 2M", "Karras", ...).
std::string_view sampler_display_name(Sampler sampler);
std::string_view schedule_display_name(Schedule schedule);

// The infotext: the prompt, the negative prompt line, then "Key: value" pairs in A1111's order,
// joined by ", ". Empty optional fields are left out. A value holding ',', ':' or a newline is
// written as a JSON string, as A1111 quotes it; prompts are written as they are.
std::string a1111_parameters(const GenerationParams& params);

}  // namespace ebb
