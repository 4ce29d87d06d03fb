#include "pipeline/txt2img.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "core/error.h"
#include "pipeline/guided_sampling.h"
#include "pipeline/overflow_guard.h"
#include "pipeline/schedule.h"
#include "pipeline/torch_rng.h"

namespace ebb {

Tensor txt2img_latent(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                      const TextConditioner& text, const Txt2ImgOptions& options,
                      const Txt2ImgProgress& progress) {
  check_image_size(spec, options.width, options.height);
  const SamplingPlan plan = plan_sampling(options.sampler, options.schedule,
                                          DiscreteSchedule::scaled_linear(), options.steps);
  TorchCpuGenerator generator(options.seed);
  std::vector<float> x(static_cast<size_t>(shape_numel(image_latent_shape(spec, options))));
  generator.randn(x);
  for (float& v : x) v *= plan.initial_noise_scale;
  return sample_guided(backend, store, spec, text, options, plan, std::move(x), generator,
                       progress);
}

Tensor decode_latent(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                     const Tensor& latent, const std::optional<VaeTiling>& tiling) {
  std::vector<float> z = backend.to_floats(latent);
  for (float& v : z) v /= spec.vae_scaling_factor;
  store.begin_stage(Stage::Vae);
  Tensor image = run_with_f32_fallback(backend, "VAE decode", [&] {
    const Tensor scaled = backend.from_floats(latent.shape(), z);
    return tiling ? vae_decode_tiled(backend, store, spec.vae, scaled, *tiling)
                  : vae_decode(backend, store, spec.vae, scaled);
  });
  store.end_stage(Stage::Vae);
  return image;
}

Image to_rgb8(Backend& backend, const Tensor& image) {
  if (image.rank() != 4 || image.dim(0) != 1 || image.dim(1) != 3)
    fail("expected an image [1, 3, H, W], got {}", image.describe());
  const std::vector<float> chw = backend.to_floats(image);
  Image out;
  out.height = static_cast<int>(image.dim(2));
  out.width = static_cast<int>(image.dim(3));
  out.channels = 3;
  const size_t plane = static_cast<size_t>(out.width) * static_cast<size_t>(out.height);
  out.pixels.resize(plane * 3);
  for (size_t c = 0; c < 3; ++c)
    for (size_t i = 0; i < plane; ++i) {
      const float unit = std::clamp((chw[c * plane + i] + 1.0f) / 2.0f, 0.0f, 1.0f);
      out.pixels[i * 3 + c] = static_cast<uint8_t>(std::lround(unit * 255.0f));
    }
  return out;
}

}  // namespace ebb
