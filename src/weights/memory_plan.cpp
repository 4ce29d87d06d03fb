#include "weights/memory_plan.h"

namespace ebb {
namespace {

template <typename Map, typename Value>
Value lookup(const Map& map, std::string_view component, Value fallback) {
  if (auto it = map.find(component); it != map.end()) return it->second;
  if (auto it = map.find(component_group(component)); it != map.end()) return it->second;
  return fallback;
}

}  // namespace

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::TextEncoders:
      return "text_encoders";
    case Stage::Diffusion:
      return "diffusion";
    case Stage::Vae:
      return "vae";
  }
  return "?";
}

std::string_view component_group(std::string_view component) {
  if (component == "clip_l" || component == "clip_h" || component == "clip_g" ||
      component == "t5xxl")
    return "clip";
  if (component == "diffusion_model") return "diffusion";
  return component;
}

bool stage_of(std::string_view component, Stage& stage) {
  const std::string_view group = component_group(component);
  if (group == "clip")
    stage = Stage::TextEncoders;
  else if (group == "diffusion")
    stage = Stage::Diffusion;
  else if (group == "vae")
    stage = Stage::Vae;
  else
    return false;
  return true;
}

WeightFormat MemoryPlan::format_of(std::string_view component) const {
  return lookup(component_format, component, default_format);
}

Release MemoryPlan::release_of(std::string_view component) const {
  return lookup(component_release, component, release);
}

WeightPlacement MemoryPlan::placement_of(std::string_view component) const {
  return lookup(placement, component, WeightPlacement::Host);
}

}  // namespace ebb
