// Image to image on the tiny SD1 checkpoint against diffusers' StableDiffusionImg2ImgPipeline
// (tests/data/sd/sd1-tiny-img2img.json, made by tools/reference/make_sd_img2img_references.py):
// the init PNG decoded, encoded, sampled from the VAE distribution, noised and sampled from the
// middle of the plan, within the txt2img tests' tolerance rule.
#include "pipeline/img2img.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "support/expect_error.h"
#include "support/sd_tiny_pipeline.h"

namespace ebb {
namespace {

using sd_test::kSdDir;

const nlohmann::json& img2img_manifest() {
  static const nlohmann::json parsed = [] {
    std::ifstream in(kSdDir + "sd1-tiny-img2img.json");
    return nlohmann::json::parse(in);
  }();
  return parsed;
}

Image init_image() {
  const std::string path = kSdDir + img2img_manifest().at("init_image").get<std::string>();
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  return decode_png(bytes, path);
}

sd_test::SdReferences img2img_references() {
  return {img2img_manifest().at("references").get<std::string>(), img2img_manifest().at("tensors")};
}

struct TinySd1 {
  sd_test::SdCheckpoint checkpoint{"sd1"};
  CpuBackend backend{1};
  DiffusionModelSpec spec = sd_test::tiny_spec("sd1", checkpoint.source);
  TextConditioner text{checkpoint.store, spec.arch, sd_test::tokenizer(),
                       sd_test::tiny_text_options("sd1")};
};

Txt2ImgOptions recorded_options(const nlohmann::json& run, const Image& image) {
  const nlohmann::json& m = img2img_manifest();
  Txt2ImgOptions o;
  o.prompt = m.at("prompt");
  o.negative_prompt = m.at("negative_prompt");
  o.cfg_scale = m.at("cfg_scale");
  o.steps = m.at("steps");
  o.seed = m.at("seed");
  o.width = image.width;
  o.height = image.height;
  o.sampler = parse_sampler(run.at("sampler").get<std::string>());
  return o;
}

TEST(Img2ImgTest, EveryRunMatchesDiffusersPipeline) {
  TinySd1 sd;
  const sd_test::SdReferences refs = img2img_references();
  const Image image = init_image();
  for (const nlohmann::json& run : img2img_manifest().at("runs")) {
    const std::string name = "img2img." + run.at("name").get<std::string>();
    SCOPED_TRACE(name);
    const Txt2ImgOptions options = recorded_options(run, image);
    const double strength = run.at("strength");
    const int expected_steps = strength_steps(options.steps, strength);
    int reported = 0;
    const Tensor latent = img2img_latent(sd.backend, sd.checkpoint.store, sd.spec, sd.text, options,
                                         image, strength, [&](int step, int steps) {
                                           EXPECT_EQ(steps, expected_steps);
                                           reported = step;
                                         });
    EXPECT_EQ(reported, expected_steps);
    refs.expect_close(name + ".latent", sd.backend.to_floats(latent));
    const Tensor decoded =
        decode_latent(sd.backend, sd.checkpoint.store, sd.spec, latent, std::nullopt);
    refs.expect_close(name + ".image", sd.backend.to_floats(decoded));

    // The plan walks the noise levels of the timesteps diffusers' scheduler planned.
    const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
    const SamplingPlan plan =
        plan_sampling(options.sampler, options.schedule, schedule, options.steps);
    const std::vector<float> timesteps = refs.values<float>(name + ".timesteps");
    ASSERT_EQ(timesteps.size() + 1, plan.sigmas.size());
    for (size_t i = 0; i < timesteps.size(); ++i) {
      const double sigma = schedule.sigma(static_cast<int>(timesteps[i]));
      EXPECT_NEAR(plan.sigmas[i], sigma, 1e-5 * sigma) << i;
    }
  }
}

TEST(Img2ImgTest, StrengthOneFromTheSameSeedIsNotTxt2Img) {
  // Strength 1 still starts from the encoded image (plus noise at sigma_max), so the result
  // differs from text to image with the same seed, and it depends on the image.
  TinySd1 sd;
  Image image = init_image();
  Txt2ImgOptions options = recorded_options(img2img_manifest().at("runs").at(0), image);
  options.steps = 2;
  const auto run = [&](const Image& init) {
    return sd.backend.to_floats(
        img2img_latent(sd.backend, sd.checkpoint.store, sd.spec, sd.text, options, init, 1.0));
  };
  const std::vector<float> first = run(image);
  EXPECT_EQ(first, run(image));
  for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(255 - p);
  EXPECT_NE(first, run(image));
  EXPECT_NE(first, sd.backend.to_floats(
                       txt2img_latent(sd.backend, sd.checkpoint.store, sd.spec, sd.text, options)));
}

TEST(Img2ImgTest, BadInputIsAnError) {
  TinySd1 sd;
  const Image image = init_image();
  Txt2ImgOptions options = recorded_options(img2img_manifest().at("runs").at(0), image);
  options.width = image.width * 2;
  test::expect_error_with(
      [&] {
        img2img_latent(sd.backend, sd.checkpoint.store, sd.spec, sd.text, options, image, 0.5);
      },
      {"init image is 16x16 but the output is 32x16"});
  options.width = image.width;
  test::expect_error_with(
      [&] {
        img2img_latent(sd.backend, sd.checkpoint.store, sd.spec, sd.text, options, image, 0.1);
      },
      {"leaves no step to run"});
  Image grey = image;
  grey.channels = 4;
  EXPECT_THROW(from_rgb8(sd.backend, grey), Error);
}

TEST(Img2ImgTest, PixelsMapToMinusOneToOne) {
  CpuBackend backend(1);
  const Image image{.width = 2, .height = 1, .channels = 3, .pixels = {0, 255, 128, 1, 2, 3}};
  const std::vector<float> chw = backend.to_floats(from_rgb8(backend, image));
  const auto unit = [](int v) { return 2.0f * (static_cast<float>(v) / 255.0f) - 1.0f; };
  EXPECT_EQ(chw, (std::vector<float>{-1.0f, unit(1), 1.0f, unit(2), unit(128), unit(3)}));
}

}  // namespace
}  // namespace ebb
