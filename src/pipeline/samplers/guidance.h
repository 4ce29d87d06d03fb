#pragma once
// Classifier-free guidance: out = uncond + scale * (cond - uncond). It is linear, so combining
// the model outputs (noise or v) or the denoised latents gives the same result. out may alias
// either input; sizes must match.
#include <span>

namespace ebb {

void cfg_combine(std::span<const float> uncond, std::span<const float> cond, float scale,
                 std::span<float> out);

}  // namespace ebb
