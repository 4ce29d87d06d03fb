#pragma once
// Moving f32 values between the host and a backend: the pipeline keeps latents on the host
// between sampler steps (the samplers work on flat float arrays).
#include <span>
#include <vector>

#include "backend/backend.h"

namespace ebb {

Tensor tensor_from_host(Backend& backend, const Shape& shape, std::span<const float> values);
std::vector<float> host_values(Backend& backend, const Tensor& t);

}  // namespace ebb
