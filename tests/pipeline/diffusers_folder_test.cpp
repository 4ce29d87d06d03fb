// Diffusers folders of the tiny SD1 and SDXL models (ebb-synth, the seed of the committed single
// files) run exactly as the single files: the model source renames their UNet and VAE tensors
// to the single-file names, so text to image (UNet, decoder) and image to image (encoder) are
// bit-identical. The OpenCLIP towers are read in transformers' layout (split q/k/v, transposed
// projection, SD 2.x's text_encoder one layer short) and give the same context and pooled
// embedding.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "pipeline/img2img.h"
#include "pipeline/txt2img.h"
#include "support/expect_error.h"
#include "support/sd_tiny_pipeline.h"
#include "support/temp_dir.h"
#include "synth/synth_writer.h"

namespace ebb {
namespace {

using sd_test::sd_manifest;

struct Outputs {
  std::vector<float> latent, image, edited;
};

Outputs run(const std::string& arch, const ModelPaths& paths) {
  const ModelSource source = ModelSource::open(paths);
  Ledger ledger;
  WeightStore store(source, ledger, {});
  CpuBackend backend(1);
  const DiffusionModelSpec spec = sd_test::tiny_spec(arch, source);
  const TextConditioner text(store, spec.arch, sd_test::tokenizer(),
                             sd_test::tiny_text_options(arch));
  Txt2ImgOptions options;
  options.prompt = sd_manifest().at("prompts").at(0);
  options.width = options.height = 16;
  options.steps = 2;
  options.sampler = Sampler::euler_a;
  Outputs out;
  const Tensor latent = txt2img_latent(backend, store, spec, text, options);
  out.latent = backend.to_floats(latent);
  out.image = backend.to_floats(decode_latent(backend, store, spec, latent, std::nullopt));
  const Image init = to_rgb8(backend, decode_latent(backend, store, spec, latent, std::nullopt));
  out.edited = backend.to_floats(img2img_latent(backend, store, spec, text, options, init, 1.0));
  return out;
}

synth::SynthOptions tiny_synth(synth::Arch arch, const std::string& output) {
  synth::SynthOptions options;
  options.arch = arch;
  options.size = synth::ModelSize::Tiny;
  options.dtype = DType::F16;
  options.seed = 1;
  options.output = output;
  return options;
}

// ebb-synth's diffusers folder of the tiny model; returns its path.
std::string write_folder(synth::Arch arch, const std::string& path) {
  synth::SynthOptions options = tiny_synth(arch, path);
  options.layout = synth::Layout::Diffusers;
  synth::write_synthetic(options);
  return options.output;
}

std::string single_file(const std::string& arch) {
  const nlohmann::json& checkpoint = sd_manifest().at("archs").at(arch).at("checkpoint");
  EXPECT_EQ(checkpoint.at("command"), "ebb-synth " + arch +
                                          " --size tiny --dtype f16 --seed 1 -o " +
                                          checkpoint.at("file").get<std::string>());
  return sd_test::kSdDir + checkpoint.at("file").get<std::string>();
}

void expect_equal(const Outputs& from_folder, const Outputs& from_file) {
  EXPECT_EQ(from_folder.latent, from_file.latent);
  EXPECT_EQ(from_folder.image, from_file.image);
  EXPECT_EQ(from_folder.edited, from_file.edited);
}

TEST(DiffusersFolderTest, Sd1FolderRunsBitIdenticalToTheSingleFile) {
  test::TempDir dir;
  const std::string output = write_folder(synth::Arch::Sd1, dir / "sd1-tiny");

  const ModelSource folder = ModelSource::open({.model = output});
  for (const char* component : {"diffusion_model", "vae"}) {
    ASSERT_NE(folder.component(component), nullptr) << component;
    EXPECT_EQ(folder.component(component)->naming, Naming::Original) << component;
  }
  EXPECT_EQ(folder.architecture().arch, Architecture::SD1);
  const IndexedTensor* renamed = folder.find("diffusion_model", "output_blocks.1.2.conv.weight");
  ASSERT_NE(renamed, nullptr);
  EXPECT_EQ(renamed->original_name, "up_blocks.0.upsamplers.0.conv.weight");

  expect_equal(run("sd1", {.model = output}), run("sd1", {.model = single_file("sd1")}));
}

// A full diffusers folder, its OpenCLIP tower in transformers' layout, against the single file.
// The spec's OpenCLIP head count must read the token embedding under either layout's name.
void expect_folder_runs_as_the_single_file(synth::Arch arch, const std::string& name) {
  test::TempDir dir;
  const std::string output = write_folder(arch, dir / (name + "-tiny"));
  const int64_t heads =
      diffusion_model_spec(ModelSource::open({.model = output})).text.open_clip_heads;
  EXPECT_EQ(
      heads,
      diffusion_model_spec(ModelSource::open({.model = single_file(name)})).text.open_clip_heads);
  EXPECT_NE(heads, 0);  // the tiny towers are narrower than one 64-channel head
  expect_equal(run(name, {.model = output}), run(name, {.model = single_file(name)}));
}

TEST(DiffusersFolderTest, Sd2FolderRunsBitIdenticalToTheSingleFile) {
  expect_folder_runs_as_the_single_file(synth::Arch::Sd2, "sd2");
}

TEST(DiffusersFolderTest, SdxlFolderRunsBitIdenticalToTheSingleFile) {
  expect_folder_runs_as_the_single_file(synth::Arch::Sdxl, "sdxl");
}

// The SD 2.x tower lacks the original's last layer: clip skip 1 and pooling cannot be had.
TEST(DiffusersFolderTest, Sd2TextEncoderRefusesTheDroppedLayer) {
  test::TempDir dir;
  const std::string output = write_folder(synth::Arch::Sd2, dir / "sd2-tiny");
  const ModelSource source = ModelSource::open({.model = output});
  Ledger ledger;
  WeightStore store(source, ledger, {});
  CpuBackend backend(1);
  const ClipTextTransformer encoder = make_open_clip_text_encoder(
      store, "clip_h", sd_test::tiny_text_options("sd2").open_clip_heads);
  const std::vector<int32_t> ids = {49406, 320, 49407};
  test::expect_error_with([&] { encoder.run(backend, ids, {.skip = 1}); },
                          {"clip_h", "clip skip 1", "not stored"});
  test::expect_error_with([&] { encoder.run(backend, ids, {.skip = 2, .last_normed = true}); },
                          {"clip_h", "pooling"});
}

TEST(DiffusersFolderTest, SdxlFolderWithOriginalBigGRunsBitIdenticalToTheSingleFile) {
  test::TempDir dir;
  const std::string folder = write_folder(synth::Arch::Sdxl, dir / "sdxl-tiny");
  synth::SynthOptions big_g = tiny_synth(synth::Arch::Sdxl, dir / "clip_g.safetensors");
  big_g.components = {"clip_g"};
  synth::write_synthetic(big_g);

  expect_equal(run("sdxl", {.model = folder, .clip_g = big_g.output}),
               run("sdxl", {.model = single_file("sdxl")}));
}

}  // namespace
}  // namespace ebb
