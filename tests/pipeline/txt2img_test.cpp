// Text to image on the tiny SD1/SD2/SDXL checkpoints against the diffusers/k-diffusion runs
// recorded in tests/data/sd (every sampler and schedule of manifest.txt2img.runs): the final
// latent and the decoded image within the manifest's tolerance rule.
#include "pipeline/txt2img.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "support/sd_tiny_pipeline.h"

namespace ebb {
namespace {

using sd_test::recorded_options;
using sd_test::sd_manifest;
using sd_test::tiny_spec;
using sd_test::tiny_text_options;
using sd_test::tokenizer;

class Txt2ImgReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Txt2ImgReferenceTest, EverySamplerRunMatchesTheReference) {
  const std::string arch = GetParam();
  sd_test::SdCheckpoint checkpoint(arch);
  const sd_test::SdReferences refs(arch);
  CpuBackend backend(1);
  const DiffusionModelSpec spec = tiny_spec(arch, checkpoint.source);
  const TextConditioner text(checkpoint.store, spec.arch, tokenizer(), tiny_text_options(arch));
  for (const nlohmann::json& run : sd_manifest().at("txt2img").at("runs")) {
    const std::string name = run.at("name");
    SCOPED_TRACE(arch + " " + name);
    const Txt2ImgOptions options = recorded_options(run, spec);
    int reported = 0;
    const Tensor latent =
        txt2img_latent(backend, checkpoint.store, spec, text, options, [&](int step, int steps) {
          EXPECT_EQ(steps, options.steps);
          reported = step;
        });
    EXPECT_EQ(reported, options.steps);
    const double latent_gap =
        refs.expect_close("txt2img." + name + ".latent", backend.to_floats(latent));
    const Tensor image = decode_latent(backend, checkpoint.store, spec, latent, std::nullopt);
    const double image_gap =
        refs.expect_close("txt2img." + name + ".image", backend.to_floats(image));
    RecordProperty(arch + "." + name + ".latent_gap", std::to_string(latent_gap));
    RecordProperty(arch + "." + name + ".image_gap", std::to_string(image_gap));
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, Txt2ImgReferenceTest, ::testing::Values("sd1", "sd2", "sdxl"));

TEST(Txt2ImgTest, SizesTheModelCannotTakeAreErrors) {
  sd_test::SdCheckpoint checkpoint("sd1");
  CpuBackend backend(1);
  const DiffusionModelSpec spec = tiny_spec("sd1", checkpoint.source);
  const TextConditioner text(checkpoint.store, spec.arch, tokenizer(), tiny_text_options("sd1"));
  Txt2ImgOptions options;
  options.steps = 1;
  options.width = 18;  // the tiny model needs multiples of 2 (VAE) x 2 (UNet) = 4
  options.height = 16;
  try {
    txt2img_latent(backend, checkpoint.store, spec, text, options);
    ADD_FAILURE() << "width 18 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("width 18"), std::string::npos) << e.what();
  }
  options.width = 16;
  options.height = 0;
  EXPECT_THROW(txt2img_latent(backend, checkpoint.store, spec, text, options), Error);
}

// A prompt of several token windows against a one-window negative prompt cannot share a batch:
// the two UNet calls must still give a finite latent, and a scale of 1 ignores the negative.
TEST(Txt2ImgTest, PromptsOfDifferentLengthsAndUnguidedRuns) {
  sd_test::SdCheckpoint checkpoint("sd1");
  CpuBackend backend(1);
  const DiffusionModelSpec spec = tiny_spec("sd1", checkpoint.source);
  const TextConditioner text(checkpoint.store, spec.arch, tokenizer(), tiny_text_options("sd1"));
  Txt2ImgOptions options;
  options.width = options.height = 16;
  options.steps = 2;
  options.sampler = Sampler::euler;
  const std::string long_prompt = sd_manifest().at("prompts").at(3);
  options.prompt = long_prompt + ", " + long_prompt;
  ASSERT_GT(text.windows(options.prompt, false).count(), 1u);
  for (const float v :
       backend.to_floats(txt2img_latent(backend, checkpoint.store, spec, text, options)))
    ASSERT_TRUE(std::isfinite(v));

  options.cfg_scale = 1.0f;
  options.negative_prompt = "a";
  const std::vector<float> first =
      backend.to_floats(txt2img_latent(backend, checkpoint.store, spec, text, options));
  options.negative_prompt = "something else entirely";
  EXPECT_EQ(first,
            backend.to_floats(txt2img_latent(backend, checkpoint.store, spec, text, options)));
}

TEST(Txt2ImgTest, RgbConversionClampsAndRounds) {
  CpuBackend backend(1);
  // One pixel per value, channel-planar: -1 -> 0, 1 -> 255, beyond clamps, 0 -> 127.5 -> 128.
  const std::vector<float> planes = {-1.0f, 1.0f, -3.0f, 2.0f, 0.0f, 0.5f};
  const Tensor image = backend.empty({1, 3, 1, 2});
  backend.write(image, planes.data(), planes.size() * sizeof(float));
  const Image rgb = to_rgb8(backend, image);
  ASSERT_EQ(rgb.width, 2);
  ASSERT_EQ(rgb.height, 1);
  const std::vector<uint8_t> expected = {0, 0, 128, 255, 255, 191};
  EXPECT_EQ(rgb.pixels, expected);
  EXPECT_THROW(to_rgb8(backend, backend.empty({1, 4, 1, 2})), Error);
}

}  // namespace
}  // namespace ebb
