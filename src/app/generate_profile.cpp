#include "app/generate_profile.h"

#include <fmt/format.h>

#include <cstdio>

#include "backend/backend_factory.h"

namespace ebb {

GenerateProfile::GenerateProfile(Backend& diffusion, Backend& vae)
    : backend_(diffusion),
      reports_decode_(&vae == &diffusion),
      profiler_(make_op_profiler(diffusion)) {
  backend_.set_op_observer(profiler_.get());
}

GenerateProfile::~GenerateProfile() {
  backend_.set_op_observer(nullptr);
}

void GenerateProfile::step_done(int image, int step, int steps) {
  profiler_->collect();
  if (step == steps && steps > 1)
    fmt::print(stderr, "{}\n",
               profiler_->table(fmt::format("image {}: sampler step (steps 2..{} on {})", image,
                                            steps, backend_.device().name()),
                                steps - 1));
  // What ran before the second step (text encoding, first uploads) and each table's ops are
  // left out of the next table.
  if (step == 1 || step == steps) profiler_->clear();
}

void GenerateProfile::decode_done(int image) {
  profiler_->collect();
  if (reports_decode_)
    fmt::print(stderr, "{}\n",
               profiler_->table(
                   fmt::format("image {}: VAE decode on {}", image, backend_.device().name()), 1));
  profiler_->clear();
}

}  // namespace ebb
