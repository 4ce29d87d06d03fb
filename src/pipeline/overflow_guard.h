#pragma once
// The pipeline's answer to f16 overflow. Some released weights (SDXL's VAE above all) push
// activations past f16's 65504 and the output turns to NaN; diffusers upcasts such a stage to
// f32. Here a stage runs in the backend's activation dtype and its output is checked on the
// device (one flag read back); only when it is not finite does the stage run again in F32.
#include <functional>
#include <string_view>

#include "backend/backend.h"

namespace ebb {

// Runs `stage` on `backend` and returns its output. `stage` makes its own input tensors, so a
// second run computes from them in the dtype then in force. When the output holds NaN or
// infinity and the backend computes in F16 or BF16, stderr says so (once per process) and
// `stage` runs again with F32 activations; that output is F32. ebb::Error, naming `what`, when
// the output is not finite in F32 either.
Tensor run_with_f32_fallback(Backend& backend, std::string_view what,
                             const std::function<Tensor()>& stage);

}  // namespace ebb
