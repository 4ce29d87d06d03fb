#include "pipeline/txt2img.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "core/error.h"
#include "pipeline/samplers/guidance.h"
#include "pipeline/schedule.h"
#include "pipeline/torch_rng.h"

namespace ebb {
namespace {

Tensor from_host(Backend& backend, const Shape& shape, std::span<const float> values) {
  Tensor t = backend.empty(shape);
  backend.write(t, values.data(), values.size_bytes());
  return t;
}

std::vector<float> to_host(Backend& backend, const Tensor& t) {
  const Tensor dense = backend.contiguous(t);
  std::vector<float> out(static_cast<size_t>(dense.numel()));
  backend.read(dense, out.data(), out.size() * sizeof(float));
  return out;
}

void check_size(const char* what, int pixels, const DiffusionModelSpec& spec) {
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
  return from_host(backend, {batch, 6}, ids);
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

Tensor txt2img_latent(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                      const TextConditioner& text, const Txt2ImgOptions& options,
                      const Txt2ImgProgress& progress) {
  check_size("width", options.width, spec);
  check_size("height", options.height, spec);
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  const SamplingPlan plan =
      plan_sampling(options.sampler, options.schedule, schedule, options.steps);

  store.begin_stage(Stage::TextEncoders);
  const TextConditioning cond = text.encode(backend, options.prompt);
  const bool guided = options.cfg_scale != 1.0f;
  const TextConditioning uncond =
      guided ? text.encode(backend, options.negative_prompt) : TextConditioning{};
  store.end_stage(Stage::TextEncoders);
  // One batch-2 UNet call when both prompts span the same number of token windows.
  const bool batched = guided && cond.context.shape() == uncond.context.shape();
  const UNetCondition cond_only = stacked_condition(backend, spec, {&cond}, options);
  const UNetCondition uncond_only =
      guided ? stacked_condition(backend, spec, {&uncond}, options) : UNetCondition{};
  const UNetCondition both =
      batched ? stacked_condition(backend, spec, {&uncond, &cond}, options) : UNetCondition{};

  const Shape latent_shape{1, spec.unet.in_channels, options.height / spec.vae.downscale(),
                           options.width / spec.vae.downscale()};
  const auto n = static_cast<size_t>(shape_numel(latent_shape));
  auto run_unet = [&](std::span<const float> scaled_x, float timestep, std::span<float> out) {
    const Tensor x = from_host(backend, latent_shape, scaled_x);
    if (!guided) {
      const std::vector<float> e =
          to_host(backend, unet_forward(backend, store, spec.unet, x, timestep, cond_only));
      std::copy(e.begin(), e.end(), out.begin());
      return;
    }
    std::vector<float> u, c;
    if (batched) {
      const std::vector<float> both_out = to_host(
          backend,
          unet_forward(backend, store, spec.unet, backend.concat({x, x}, 0), timestep, both));
      u.assign(both_out.begin(), both_out.begin() + static_cast<std::ptrdiff_t>(n));
      c.assign(both_out.begin() + static_cast<std::ptrdiff_t>(n), both_out.end());
    } else {
      u = to_host(backend, unet_forward(backend, store, spec.unet, x, timestep, uncond_only));
      c = to_host(backend, unet_forward(backend, store, spec.unet, x, timestep, cond_only));
    }
    cfg_combine(u, c, options.cfg_scale, out);
  };

  TorchCpuGenerator generator(options.seed);
  std::vector<float> x(n);
  generator.randn(x);
  for (float& v : x) v *= plan.initial_noise_scale;
  SamplerCallbacks io;
  io.denoise = make_denoiser(spec.prediction, schedule, run_unet);
  io.noise = [&generator](std::span<float> noise) { generator.randn(noise); };
  io.on_step = [&](const StepInfo& info) {
    store.step_done();
    if (progress) progress(info.step + 1, info.steps);
  };
  store.begin_stage(Stage::Diffusion);
  sample(plan, x, io);
  store.end_stage(Stage::Diffusion);
  return from_host(backend, latent_shape, x);
}

Tensor decode_latent(Backend& backend, WeightStore& store, const DiffusionModelSpec& spec,
                     const Tensor& latent, const std::optional<VaeTiling>& tiling) {
  std::vector<float> z = to_host(backend, latent);
  for (float& v : z) v /= spec.vae_scaling_factor;
  const Tensor scaled = from_host(backend, latent.shape(), z);
  store.begin_stage(Stage::Vae);
  Tensor image = tiling ? vae_decode_tiled(backend, store, spec.vae, scaled, *tiling)
                        : vae_decode(backend, store, spec.vae, scaled);
  store.end_stage(Stage::Vae);
  return image;
}

Image to_rgb8(Backend& backend, const Tensor& image) {
  if (image.rank() != 4 || image.dim(0) != 1 || image.dim(1) != 3)
    fail("expected an image [1, 3, H, W], got {}", image.describe());
  const std::vector<float> chw = to_host(backend, image);
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
