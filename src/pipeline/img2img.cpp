#include "pipeline/img2img.h"

#include <vector>

#include "core/error.h"
#include "models/vae.h"
#include "pipeline/guided_sampling.h"
#include "pipeline/overflow_guard.h"
#include "pipeline/schedule.h"
#include "pipeline/torch_rng.h"
#include "pipeline/vae_tiling.h"

namespace ebb {

Tensor from_rgb8(Backend& backend, const Image& image) {
  if (image.channels != 3) fail("expected an RGB image, got {} channels", image.channels);
  const size_t plane = static_cast<size_t>(image.width) * static_cast<size_t>(image.height);
  if (image.pixels.size() != plane * 3)
    fail("image of {}x{} holds {} bytes", image.width, image.height, image.pixels.size());
  std::vector<float> chw(plane * 3);
  for (size_t i = 0; i < plane; ++i)
    for (size_t c = 0; c < 3; ++c)
      chw[c * plane + i] = 2.0f * (static_cast<float>(image.pixels[i * 3 + c]) / 255.0f) - 1.0f;
  return backend.from_floats({1, 3, image.height, image.width}, chw);
}

Tensor img2img_latent(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                      const TextConditioner& text, const Txt2ImgOptions& options,
                      const Image& init_image, double strength, const Txt2ImgProgress& progress) {
  check_image_size(spec, options.width, options.height);
  if (init_image.width != options.width || init_image.height != options.height) {
    fail("the init image is {}x{} but the output is {}x{}", init_image.width, init_image.height,
         options.width, options.height);
  }
  const SamplingPlan full = plan_sampling(options.sampler, options.schedule,
                                          DiscreteSchedule::scaled_linear(), options.steps);
  const SamplingPlan plan =
      plan_from_step(full, options.steps - strength_steps(options.steps, strength));

  store.begin_stage(Stage::Vae);
  // An encode redone in F32 hands its moments back in the activation dtype the ops below use.
  const Tensor moments = backend.import_from(
      backend, run_with_f32_fallback(backend, "VAE encode", [&] {
        const Tensor image = from_rgb8(backend, init_image);
        return options.vae_tiling
                   ? vae_encode_moments_tiled(backend, store, spec.vae, image, *options.vae_tiling)
                   : vae_encode_moments(backend, store, spec.vae, image);
      }));
  store.end_stage(Stage::Vae);
  const Shape shape = image_latent_shape(spec, options);
  TorchCpuGenerator generator(options.seed);
  std::vector<float> draw(static_cast<size_t>(shape_numel(shape)));
  generator.randn(draw);
  std::vector<float> x =
      backend.to_floats(vae_latent_sample(backend, moments, backend.from_floats(shape, draw)));
  generator.randn(draw);
  const float sigma = plan.sigmas.front();
  for (size_t i = 0; i < x.size(); ++i) x[i] = x[i] * spec.vae_scaling_factor + draw[i] * sigma;
  return sample_guided(backend, store, spec, text, options, plan, std::move(x), generator,
                       progress);
}

}  // namespace ebb
