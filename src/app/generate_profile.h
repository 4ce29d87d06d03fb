#pragma once
// `ebb generate --profile`: the diffusion backend's ops timed where they run, printed to
// stderr as two tables per image: one sampler step (the mean of steps 2..N; the first step also
// uploads weights and plans products) and the VAE decode (when the VAE shares that backend).
// Text encoding is not reported. Without --profile nothing is attached and nothing is timed.
#include <memory>

#include "backend/backend.h"
#include "backend/op_profiler.h"

namespace ebb {

class GenerateProfile {
 public:
  // Attaches a profiler to `diffusion` (and reports the decode if `vae` is the same backend).
  GenerateProfile(Backend& diffusion, Backend& vae);
  ~GenerateProfile();
  GenerateProfile(const GenerateProfile&) = delete;
  GenerateProfile& operator=(const GenerateProfile&) = delete;

  // After sampler step `step` of `steps` (1-based) of image `image`.
  void step_done(int image, int step, int steps);
  // After image `image`'s VAE decode.
  void decode_done(int image);

 private:
  Backend& backend_;
  bool reports_decode_;
  std::unique_ptr<OpProfiler> profiler_;
};

}  // namespace ebb
