#include "pipeline/samplers/guidance.h"

#include "core/error.h"

namespace ebb {

void cfg_combine(std::span<const float> uncond, std::span<const float> cond, float scale,
                 std::span<float> out) {
  if (cond.size() != uncond.size() || out.size() != uncond.size()) {
    fail("cfg_combine: sizes differ (uncond {}, cond {}, out {})", uncond.size(), cond.size(),
         out.size());
  }
  for (size_t j = 0; j < out.size(); ++j) {
    out[j] = uncond[j] + scale * (cond[j] - uncond[j]);
  }
}

}  // namespace ebb
