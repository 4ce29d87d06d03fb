#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "app/commands.h"
#include "app/device_flags.h"
#include "app/generate_profile.h"
#include "app/memory_flags.h"
#include "app/memory_session.h"
#include "app/model_flags.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/model_source.h"
#include "io/png_image.h"
#include "pipeline/a1111_parameters.h"
#include "pipeline/clip_vocab.h"
#include "pipeline/img2img.h"
#include "pipeline/txt2img.h"
#include "weights/ledger.h"
#include "weights/weight_store.h"

namespace ebb {
namespace {

// stable-diffusion.cpp's tile for --vae-tiling, in latent pixels.
constexpr VaeTiling kVaeTiling{.tile = 32, .overlap = 8};

struct GenerateArgs {
  ModelPaths paths;
  std::string prompt, negative_prompt;
  int width = 512, height = 512;
  int steps = 20;
  float cfg_scale = 7.0f;
  std::string sampler = "euler_a", scheduler = "discrete";
  int64_t seed = 42;
  int batch_count = 1;
  std::string output = "output.png";
  bool overwrite = false;
  int clip_skip = 0;
  bool vae_tiling = false;
  DeviceFlags devices;
  std::string prediction;
  // Image to image: the init PNG; the size defaults to the image's when -W / -H are not given.
  std::string init_image;
  double strength = 0.75;
  bool width_given = false, height_given = false;
  MemoryFlags memory;
  bool profile = false;
};

// Image i of a batch: the -o path itself for the first, "<stem>_<i><ext>" for the others.
std::string output_path(const std::string& output, int index) {
  if (index == 0) return output;
  const std::filesystem::path p(output);
  return (p.parent_path() /
          fmt::format("{}_{}{}", p.stem().string(), index, p.extension().string()))
      .string();
}

void write_png(const std::string& path, bool overwrite, const Image& image,
               const std::string& parameters) {
  const std::vector<uint8_t> png = encode_png(image, {{"parameters", parameters}});
  AtomicFile file = AtomicFile::create(path, overwrite);
  file.write(std::as_bytes(std::span(png)));
  file.commit();
}

// The init image, of the output size: -W / -H left out take the image's, and an image of
// another size is refused rather than resampled (no resampler here matches diffusers' PIL
// Lanczos, so a resized image would not give diffusers' result).
Image read_init_image(GenerateArgs& a) {
  const MappedFile file = MappedFile::open(a.init_image, MapMode::ReadOnly);
  const std::span<const std::byte> bytes = file.bytes();
  Image image =
      decode_png({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, a.init_image);
  if (!a.width_given) a.width = image.width;
  if (!a.height_given) a.height = image.height;
  if (image.width != a.width || image.height != a.height)
    fail("{} is {}x{} but -W/-H ask for {}x{}; resize the image or drop -W/-H", a.init_image,
         image.width, image.height, a.width, a.height);
  return image;
}

void run_generate(GenerateArgs a) {
  if (a.paths.model.empty() && a.paths.diffusion_model.empty())
    throw CLI::ValidationError("generate", "give a model with -m or --diffusion-model");
  const std::optional<Image> init_image =
      a.init_image.empty() ? std::nullopt : std::optional(read_init_image(a));
  if (a.width <= 0 || a.width % 8 != 0 || a.height <= 0 || a.height % 8 != 0)
    fail("width and height must be positive multiples of 8, got {}x{}", a.width, a.height);
  if (a.batch_count < 1) fail("--batch-count must be at least 1, got {}", a.batch_count);
  Txt2ImgOptions options;
  options.prompt = a.prompt;
  options.negative_prompt = a.negative_prompt;
  options.width = a.width;
  options.height = a.height;
  options.steps = a.steps;
  options.cfg_scale = a.cfg_scale;
  options.sampler = parse_sampler(a.sampler);
  options.schedule = parse_schedule(a.scheduler);
  if (a.vae_tiling) options.vae_tiling = kVaeTiling;
  // Refuse before spending minutes on images that could not be saved; AtomicFile checks again.
  if (!a.overwrite)
    for (int i = 0; i < a.batch_count; ++i)
      if (std::filesystem::exists(output_path(a.output, i)))
        fail("{} exists; pass --overwrite to replace it", output_path(a.output, i));

  const ModelSource source = ModelSource::open(a.paths);
  MemorySession memory(a.memory, a.devices, source, options);
  WeightStore& store = memory.store();
  DiffusionModelSpec spec = diffusion_model_spec(source);
  spec.text.clip_skip = a.clip_skip;
  if (a.prediction == "eps")
    spec.prediction = Prediction::epsilon;
  else if (a.prediction == "v")
    spec.prediction = Prediction::v;
  else if (!a.prediction.empty())
    fail("unknown --prediction '{}' (valid: eps, v)", a.prediction);
  const ClipTokenizer tokenizer(find_clip_vocab());
  const TextConditioner text(store, spec.arch, tokenizer, spec.text);
  Backend& backend = memory.diffusion_backend();
  Backend& vae_backend = memory.vae_backend();
  options.text_backend = &memory.text_backend();
  std::optional<GenerateProfile> profile;
  if (a.profile) profile.emplace(backend, vae_backend);

  const uint64_t first_seed = a.seed < 0 ? std::random_device{}() : static_cast<uint64_t>(a.seed);
  for (int i = 0; i < a.batch_count; ++i) {
    options.seed = first_seed + static_cast<uint64_t>(i);
    auto last = std::chrono::steady_clock::now();
    const auto progress = [&](int step, int steps) {
      // Before the clock is read: collecting waits for the step's ops to finish.
      if (profile) profile->step_done(i + 1, step, steps);
      const auto now = std::chrono::steady_clock::now();
      fmt::print(stderr, "image {}/{}: step {}/{} {:.2f}s\n", i + 1, a.batch_count, step, steps,
                 std::chrono::duration<double>(now - last).count());
      last = now;
    };
    const Tensor latent =
        init_image
            ? img2img_latent(backend, store, spec, text, options, *init_image, a.strength, progress)
            : txt2img_latent(backend, store, spec, text, options, progress);
    const auto decode_start = std::chrono::steady_clock::now();
    const Image image = to_rgb8(
        vae_backend, decode_latent(vae_backend, store, spec,
                                   vae_backend.import_from(backend, latent), options.vae_tiling));
    fmt::print(
        stderr, "image {}/{}: VAE decode {:.2f}s\n", i + 1, a.batch_count,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - decode_start).count());
    if (profile) profile->decode_done(i + 1);

    GenerationParams params;
    params.prompt = a.prompt;
    params.negative_prompt = a.negative_prompt;
    params.steps = a.steps;
    params.sampler = options.sampler;
    params.schedule = options.schedule;
    params.cfg_scale = a.cfg_scale;
    params.seed = static_cast<int64_t>(options.seed);
    params.width = a.width;
    params.height = a.height;
    params.model =
        std::filesystem::path(a.paths.model.empty() ? a.paths.diffusion_model : a.paths.model)
            .stem()
            .string();
    if (init_image) params.denoising_strength = a.strength;
    params.clip_skip = a.clip_skip > 0 ? a.clip_skip : (spec.arch == Architecture::SD1 ? 1 : 2);
    const std::string path = output_path(a.output, i);
    write_png(path, a.overwrite, image, a1111_parameters(params));
    fmt::print(stderr, "wrote {}\n", path);
    memory.image_done();
  }
  memory.finish();
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate",
                                 "Text to image or image to image (SD 1.x/2.x/XL), written as PNG");
  cmd->add_option("-m,--model", args->paths.model, "Model file or diffusers folder");
  add_model_flags(*cmd, args->paths);
  cmd->add_option("-p,--prompt", args->prompt, "Prompt (A1111 emphasis syntax)");
  cmd->add_option("-n,--negative-prompt", args->negative_prompt, "Negative prompt");
  cmd->add_option("-W,--width", args->width, "Image width in pixels (multiple of 8)")
      ->capture_default_str();
  cmd->add_option("-H,--height", args->height, "Image height in pixels (multiple of 8)")
      ->capture_default_str();
  cmd->add_option("--steps", args->steps, "Sampling steps")->capture_default_str();
  cmd->add_option("--cfg-scale", args->cfg_scale, "Classifier-free guidance scale")
      ->capture_default_str();
  cmd->add_option("--sampling-method", args->sampler,
                  "euler, euler_a, heun, dpm2, dpm++2m, dpm++2s_a, lcm, ddim_trailing")
      ->capture_default_str();
  cmd->add_option("--scheduler", args->scheduler, "discrete, karras, exponential")
      ->capture_default_str();
  cmd->add_option("-s,--seed", args->seed, "Seed (negative: random)")->capture_default_str();
  cmd->add_option("-b,--batch-count", args->batch_count, "Images to make (seeds seed, seed+1, ...)")
      ->capture_default_str();
  cmd->add_option("-o,--output", args->output, "Output PNG (batch: <stem>_<i>.png for the rest)")
      ->capture_default_str();
  cmd->add_flag("--overwrite", args->overwrite, "Replace existing output files");
  cmd->add_option("--clip-skip", args->clip_skip,
                  "Text encoder layers to skip from the end (0: the model's default)");
  cmd->add_flag("--vae-tiling", args->vae_tiling, "Decode the latent in tiles to save memory");
  add_device_flags(*cmd, args->devices);
  cmd->add_option("--prediction", args->prediction,
                  "What the UNet predicts: eps or v (default: v for SD 2.x, as the 768-v model; "
                  "eps otherwise; SD 2.x base models need eps)");
  cmd->add_option("-i,--init-img", args->init_image,
                  "Image to image: the init PNG (its size is the output's unless -W/-H are given)");
  cmd->add_option("--strength", args->strength,
                  "Image to image: how much to change the init image, 0 to 1 (runs "
                  "floor(steps * strength) steps)")
      ->capture_default_str();
  add_memory_flags(*cmd, args->memory);
  cmd->add_flag("--profile", args->profile,
                "Time every op of the diffusion backend and print per-op tables of one sampler "
                "step and the VAE decode, and the ops the device sat idle before, to stderr (slows "
                "the run a little)");
  cmd->callback([args, cmd] {
    args->width_given = cmd->count("--width") > 0;
    args->height_given = cmd->count("--height") > 0;
    run_generate(*args);
  });
}

}  // namespace ebb
