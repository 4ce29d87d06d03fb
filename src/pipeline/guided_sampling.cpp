#include "pipeline/guided_sampling.h"

#include <algorithm>
#include <span>

#include "core/error.h"
#include "pipeline/noise_prefetch.h"
#include "pipeline/samplers/guidance.h"
#include "pipeline/schedule.h"

namespace ebb {
namespace {

void check_side(const char* what, int pixels, const DiffusionModelSpec& spec) {
  const int64_t unet_factor = int64_t{1} << (spec.unet.levels() - 1);
  const int64_t multiple = spec.vae.downscale() * unet_factor;
  if (pixels <= 0 || pixels % multiple != 0)
    fail("{} {} is not a positive multiple of {} (the VAE's {}x times the UNet's {}x downsampling)",
         what, pixels, multiple, spec.vae.downscale(), unet_factor);
}

// SDXL's size condition: original size, crop top-left, target size, all the image's own.
Tensor sdxl_time_ids(Backend& backend, int64_t batch, int width, int height) {
  std::vector<float> ids;
  for (int64_t b = 0; b < batch; ++b) {
    const float h = static_cast<float>(height), w = static_cast<float>(width);
    ids.insert(ids.end(), {h, w, 0.0f, 0.0f, h, w});
  }
  // They go through timestep_embedding, which takes f32 on every backend.
  Tensor t = backend.empty({batch, 6}, DType::F32, MemoryTag::Activations, "SDXL time ids");
  backend.write_floats(t, ids);
  return t;
}

// The UNet's condition for one or more prompts' encodings stacked on the batch axis.
UNetCondition stacked_condition(Backend& backend, const DiffusionModelSpec& spec,
                                const std::vector<const TextConditioning*>& parts,
                                const Txt2ImgOptions& options) {
  UNetCondition c;
  std::vector<Tensor> contexts, pooled;
  for (const TextConditioning* p : parts) {
    contexts.push_back(p->context);
    if (p->pooled.defined()) pooled.push_back(p->pooled);
  }
  const auto batch = static_cast<int64_t>(parts.size());
  c.context = batch == 1 ? contexts.front() : backend.concat(contexts, 0);
  if (spec.arch == Architecture::SDXL) {
    if (pooled.size() != parts.size()) fail("SDXL text conditioning has no pooled embedding");
    c.text_embeds = batch == 1 ? pooled.front() : backend.concat(pooled, 0);
    c.time_ids = sdxl_time_ids(backend, batch, options.width, options.height);
  }
  return c;
}

}  // namespace

void check_image_size(const DiffusionModelSpec& spec, int width, int height) {
  check_side("width", width, spec);
  check_side("height", height, spec);
}

Shape image_latent_shape(const DiffusionModelSpec& spec, const Txt2ImgOptions& options) {
  return {1, spec.unet.in_channels, options.height / spec.vae.downscale(),
          options.width / spec.vae.downscale()};
}

Tensor sample_guided(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                     const TextConditioner& text, const Txt2ImgOptions& options,
                     const SamplingPlan& plan, std::vector<float> x, TorchCpuGenerator& generator,
                     const Txt2ImgProgress& progress) {
  Backend& text_backend = options.text_backend ? *options.text_backend : backend;
  const auto encode = [&](const std::string& prompt) {
    const TextConditioning c = text.encode(text_backend, prompt);
    return TextConditioning{backend.import_from(text_backend, c.context),
                            backend.import_from(text_backend, c.pooled)};
  };
  store.begin_stage(Stage::TextEncoders);
  const TextConditioning cond = encode(options.prompt);
  const bool guided = options.cfg_scale != 1.0f;
  const TextConditioning uncond = guided ? encode(options.negative_prompt) : TextConditioning{};
  store.end_stage(Stage::TextEncoders);
  // One batch-2 UNet call when both prompts span the same number of token windows.
  const bool batched = guided && cond.context.shape() == uncond.context.shape();
  const UNetCondition cond_only = stacked_condition(backend, spec, {&cond}, options);
  const UNetCondition uncond_only =
      guided ? stacked_condition(backend, spec, {&uncond}, options) : UNetCondition{};
  const UNetCondition both =
      batched ? stacked_condition(backend, spec, {&uncond, &cond}, options) : UNetCondition{};

  const Shape shape = image_latent_shape(spec, options);
  const auto n = static_cast<size_t>(shape_numel(shape));
  if (x.size() != n) fail("start latent of {} values for a latent of {}", x.size(), n);
  auto run_unet = [&](std::span<const float> scaled_x, float timestep, std::span<float> out) {
    const Tensor xt = backend.from_floats(shape, scaled_x);
    if (!guided) {
      const std::vector<float> e =
          backend.to_floats(unet_forward(backend, store, spec.unet, xt, timestep, cond_only));
      std::copy(e.begin(), e.end(), out.begin());
      return;
    }
    std::vector<float> u, c;
    if (batched) {
      const std::vector<float> both_out = backend.to_floats(
          unet_forward(backend, store, spec.unet, backend.concat({xt, xt}, 0), timestep, both));
      u.assign(both_out.begin(), both_out.begin() + static_cast<std::ptrdiff_t>(n));
      c.assign(both_out.begin() + static_cast<std::ptrdiff_t>(n), both_out.end());
    } else {
      u = backend.to_floats(unet_forward(backend, store, spec.unet, xt, timestep, uncond_only));
      c = backend.to_floats(unet_forward(backend, store, spec.unet, xt, timestep, cond_only));
    }
    cfg_combine(u, c, options.cfg_scale, out);
  };

  SamplerCallbacks io;
  io.denoise = make_denoiser(spec.prediction, DiscreteSchedule::scaled_linear(), run_unet);
  NoisePrefetch noise(generator, n);
  io.noise = [&noise](std::span<float> out) { noise.randn(out); };
  io.on_step = [&](const StepInfo& info) {
    store.step_done();
    if (progress) progress(info.step + 1, info.steps);
  };
  store.begin_stage(Stage::Diffusion);
  sample(plan, x, io);
  store.end_stage(Stage::Diffusion);
  return backend.from_floats(shape, x);
}

}  // namespace ebb
