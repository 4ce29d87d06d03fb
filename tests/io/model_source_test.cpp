#include "io/model_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/gguf_writer.h"
#include "io/safetensors_writer.h"
#include "support/small_tensors.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

using test::f32_tensor;
using ::testing::HasSubstr;

void write_st(const std::string& path, std::vector<TensorToWrite> tensors) {
  write_safetensors(path, tensors, {}, /*overwrite=*/false);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string error_of(const ModelPaths& paths) {
  try {
    ModelSource::open(paths);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The smallest set of tensors that makes each UNet generation recognisable.
std::vector<TensorToWrite> sd1_checkpoint() {
  return {
      f32_tensor("model.diffusion_model.input_blocks.1.1.proj_in.weight", {8, 8, 1, 1}),
      f32_tensor("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                 {8, 768}, 1000),
      f32_tensor("first_stage_model.encoder.down.0.block.0.conv1.weight", {4, 4, 3, 3}),
      f32_tensor("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
                 {10, 4}),
      f32_tensor("model_ema.decay", {1})};
}

TEST(ModelSource, SingleFileSd1ComponentsByPrefix) {
  test::TempDir dir;
  write_st(dir / "sd1.safetensors", sd1_checkpoint());
  ModelSource src = ModelSource::open({dir / "sd1.safetensors"});
  EXPECT_EQ(src.architecture().arch, Architecture::SD1) << src.architecture().reason;
  std::vector<std::string> names;
  for (const Component& c : src.components()) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"clip_l", "diffusion_model", "vae", "other"}));
  const IndexedTensor* k =
      src.find("diffusion_model", "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->original_name,
            "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
  EXPECT_EQ(k->info.shape, (std::vector<int64_t>{8, 768}));
  auto bytes = src.bytes(*k);
  ASSERT_EQ(bytes.size(), 8u * 768 * 4);
  float first, last;
  std::memcpy(&first, bytes.data(), 4);
  std::memcpy(&last, bytes.data() + bytes.size() - 4, 4);
  EXPECT_EQ(first, 1000.0f);
  EXPECT_EQ(last, 1000.0f + 8 * 768 - 1);
  EXPECT_EQ(src.component("diffusion_model")->prefixes,
            (std::vector<std::string>{"model.diffusion_model."}));
  EXPECT_EQ(src.component("diffusion_model")->naming, Naming::Original);
  EXPECT_EQ(src.component("clip_l")->naming, Naming::Diffusers);
  EXPECT_EQ(src.component("vae")->naming, Naming::Original);
  EXPECT_NE(src.find("other", "model_ema.decay"), nullptr);
}

TEST(ModelSource, Sd2AndSdxlTellApartByStructure) {
  test::TempDir dir;
  write_st(dir / "sd2.safetensors",
           {f32_tensor("model.diffusion_model.input_blocks.1.1.proj_in.weight", {8, 8}),
            f32_tensor("cond_stage_model.model.token_embedding.weight", {10, 4})});
  ModelSource sd2 = ModelSource::open({dir / "sd2.safetensors"});
  EXPECT_EQ(sd2.architecture().arch, Architecture::SD2) << sd2.architecture().reason;
  ASSERT_NE(sd2.component("clip_h"), nullptr);
  EXPECT_EQ(sd2.component("clip_h")->naming, Naming::OpenClip);

  write_st(
      dir / "sdxl.safetensors",
      {f32_tensor("model.diffusion_model.input_blocks.4.1.proj_in.weight", {8, 8}),
       f32_tensor("model.diffusion_model.label_emb.0.0.weight", {16, 2816}),
       f32_tensor("conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", {4}),
       f32_tensor("conditioner.embedders.1.model.ln_final.weight", {4})});
  ModelSource sdxl = ModelSource::open({dir / "sdxl.safetensors"});
  EXPECT_EQ(sdxl.architecture().arch, Architecture::SDXL) << sdxl.architecture().reason;
  EXPECT_NE(sdxl.component("clip_l"), nullptr);
  EXPECT_NE(sdxl.component("clip_g"), nullptr);
}

TEST(ModelSource, BareFluxFileIsADiffusionModel) {
  test::TempDir dir;
  write_st(dir / "flux.safetensors", {f32_tensor("double_blocks.0.img_attn.qkv.weight", {12, 4}),
                                      f32_tensor("img_in.weight", {4, 4})});
  ModelSource src = ModelSource::open({dir / "flux.safetensors"});
  EXPECT_EQ(src.architecture().arch, Architecture::Flux);
  ASSERT_EQ(src.components().size(), 1u);
  EXPECT_EQ(src.components()[0].name, "diffusion_model");
}

TEST(ModelSource, SeparateVaeOverridesTheCheckpointsOwn) {
  test::TempDir dir;
  write_st(dir / "sd1.safetensors", sd1_checkpoint());
  write_st(dir / "vae.safetensors",
           {f32_tensor("first_stage_model.decoder.up.0.block.0.conv1.weight", {2, 2}),
            f32_tensor("first_stage_model.post_quant_conv.weight", {4, 4, 1, 1})});
  ModelPaths paths{dir / "sd1.safetensors"};
  paths.vae = dir / "vae.safetensors";
  ModelSource src = ModelSource::open(paths);
  const Component* vae = src.component("vae");
  ASSERT_NE(vae, nullptr);
  EXPECT_EQ(vae->tensors.size(), 2u);
  EXPECT_NE(src.find("vae", "post_quant_conv.weight"), nullptr);
  EXPECT_EQ(src.find("vae", "encoder.down.0.block.0.conv1.weight"), nullptr);
}

TEST(ModelSource, GgufTensorsIndexLikeSafetensors) {
  test::TempDir dir;
  write_gguf(dir / "sd1.gguf", sd1_checkpoint(), {}, 32, false);
  ModelSource src = ModelSource::open({dir / "sd1.gguf"});
  EXPECT_EQ(src.files()[0].format, FileFormat::Gguf);
  EXPECT_EQ(src.architecture().arch, Architecture::SD1);
  const IndexedTensor* k =
      src.find("diffusion_model", "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->info.shape, (std::vector<int64_t>{8, 768}));
  float first;
  std::memcpy(&first, src.bytes(*k).data(), 4);
  EXPECT_EQ(first, 1000.0f);
}

class DiffusersFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir.path() / "unet");
    std::filesystem::create_directories(dir.path() / "vae");
    std::filesystem::create_directories(dir.path() / "text_encoder");
    write_text(
        dir / "model_index.json",
        R"({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
                   "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
                   "scheduler": ["diffusers", "PNDMScheduler"], "safety_checker": [null, null]})");
    write_st(dir / "vae/diffusion_pytorch_model.safetensors",
             {f32_tensor("encoder.down_blocks.0.resnets.0.conv1.weight", {4, 4})});
    write_st(dir / "text_encoder/model.safetensors",
             {f32_tensor("text_model.embeddings.token_embedding.weight", {10, 4})});
    write_st(dir / "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
             {f32_tensor("down_blocks.0.attentions.0.proj_in.weight", {8, 8, 1, 1})});
    write_st(dir / "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
             {f32_tensor("conv_in.weight", {8, 4, 3, 3})});
  }
  void write_index(const std::string& weight_map) {
    write_text(dir / "unet/diffusion_pytorch_model.safetensors.index.json",
               R"({"metadata": {"total_size": 1}, "weight_map": )" + weight_map + "}");
  }
  test::TempDir dir;
};

TEST_F(DiffusersFolder, ShardedUnetAndRolesByArchitecture) {
  write_index(
      R"({"down_blocks.0.attentions.0.proj_in.weight": "diffusion_pytorch_model-00001-of-00002.safetensors",
                  "conv_in.weight": "diffusion_pytorch_model-00002-of-00002.safetensors"})");
  ModelSource src = ModelSource::open({dir.path().string()});
  EXPECT_EQ(src.architecture().arch, Architecture::SD1) << src.architecture().reason;
  std::vector<std::string> names;
  for (const Component& c : src.components()) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"clip_l", "diffusion_model", "vae"}));
  EXPECT_EQ(src.component("diffusion_model")->tensors.size(), 2u);
  // The diffusers names are mapped to the single-file ones (io/diffusers_names.h).
  EXPECT_EQ(src.component("diffusion_model")->naming, Naming::Original);
  ASSERT_NE(src.find("diffusion_model", "input_blocks.1.1.proj_in.weight"), nullptr);
  EXPECT_EQ(src.find("diffusion_model", "input_blocks.1.1.proj_in.weight")->original_name,
            "down_blocks.0.attentions.0.proj_in.weight");
  EXPECT_EQ(src.files().size(), 4u);
}

TEST_F(DiffusersFolder, IndexThatDisagreesWithShardsIsAnError) {
  write_index(
      R"({"down_blocks.0.attentions.0.proj_in.weight": "diffusion_pytorch_model-00002-of-00002.safetensors",
                  "conv_in.weight": "diffusion_pytorch_model-00002-of-00002.safetensors"})");
  std::string err = error_of({dir.path().string()});
  EXPECT_THAT(err, HasSubstr("index.json"));
  EXPECT_THAT(err, HasSubstr("down_blocks.0.attentions.0.proj_in.weight"));
}

TEST_F(DiffusersFolder, ShardOutsideTheFolderIsRefused) {
  write_index(R"({"conv_in.weight": "../vae/diffusion_pytorch_model.safetensors"})");
  EXPECT_THAT(error_of({dir.path().string()}), HasSubstr("not a file in"));
}

TEST_F(DiffusersFolder, MissingShardNamesTheFile) {
  write_index(R"({"conv_in.weight": "diffusion_pytorch_model-00003-of-00003.safetensors"})");
  EXPECT_THAT(error_of({dir.path().string()}), HasSubstr("00003-of-00003"));
}

TEST_F(DiffusersFolder, MalformedModelIndexNamesFileAndByte) {
  write_text(dir / "model_index.json", R"({"unet": ["diffusers", )");
  std::string err = error_of({dir.path().string()});
  EXPECT_THAT(err, HasSubstr("model_index.json"));
  EXPECT_THAT(err, HasSubstr("byte"));
}

// Found by model_source_fuzz: a number beyond a double's range is well-formed JSON that the
// parser refuses with another exception than a syntax error.
TEST_F(DiffusersFolder, NumberBeyondDoubleRangeNamesTheFile) {
  write_text(dir / "model_index.json", R"({"unet": ["diffusers", "U"], "x": 1e1111})");
  std::string err = error_of({dir.path().string()});
  EXPECT_THAT(err, HasSubstr("model_index.json"));
  EXPECT_THAT(err, HasSubstr("number overflow"));
}

TEST(ModelSource, BadPathsGetClearErrors) {
  test::TempDir dir;
  EXPECT_THAT(error_of({}), HasSubstr("no model given"));
  EXPECT_THAT(error_of({dir.path().string()}), HasSubstr("without model_index.json"));
  ModelPaths vae_dir;
  vae_dir.vae = dir.path().string();
  EXPECT_THAT(error_of(vae_dir), HasSubstr("is a directory"));
  EXPECT_THAT(error_of({dir / "missing.safetensors"}), HasSubstr("missing.safetensors"));
  write_text(dir / "model.ckpt", std::string("PK\x03\x04rest-of-a-zip", 16));
  EXPECT_THAT(error_of({dir / "model.ckpt"}), HasSubstr("pickle"));
  write_text(dir / "model.pt", std::string("\x80\x02}q\x00(X\x05\x00\x00\x00", 12));
  EXPECT_THAT(error_of({dir / "model.pt"}), HasSubstr("pickle"));
}

TEST(ModelSource, HeaderLengthsThatLookLikePickleBytesAreStillSafetensors) {
  test::TempDir dir;
  // Pad the header so its length's low byte is 0x80, a pickle's first byte.
  std::vector<TensorToWrite> tensors{f32_tensor("img_in.weight", {2})};
  for (int pad = 0; pad < 64; ++pad) {
    const std::string path = dir / ("m" + std::to_string(pad) + ".safetensors");
    write_safetensors(path, tensors, {{"pad", std::string(pad * 8, 'x')}}, false);
    std::ifstream in(path, std::ios::binary);
    if (in.get() != 0x80) continue;
    EXPECT_NO_THROW(ModelSource::open({path}));
    return;
  }
  FAIL() << "no padding gave a header length with low byte 0x80";
}

TEST(ModelSource, DiffusionModelFlagOverridesABareCheckpoint) {
  test::TempDir dir;
  write_st(dir / "a.safetensors", {f32_tensor("img_in.weight", {2}, 1)});
  write_st(dir / "b.safetensors", {f32_tensor("img_in.weight", {2}, 2)});
  ModelPaths paths{dir / "a.safetensors"};
  paths.diffusion_model = dir / "b.safetensors";
  ModelSource src = ModelSource::open(paths);
  const IndexedTensor* t = src.find("diffusion_model", "img_in.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(src.files()[t->file].path, dir / "b.safetensors");
}

}  // namespace
}  // namespace ebb
