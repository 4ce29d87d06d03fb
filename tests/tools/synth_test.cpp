#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "io/model_source.h"
#include "support/temp_dir.h"
#include "synth/synth_fill.h"
#include "synth/synth_writer.h"
#include "tensor/dequantize.h"
#include "tensor/float_convert.h"
#include "tensor/shape.h"

namespace ebb::synth {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Shape = std::vector<int64_t>;

const SynthComponent& component(const SynthModel& model, const std::string& name) {
  for (const SynthComponent& c : model.components)
    if (c.name == name) return c;
  throw std::runtime_error("no component " + name);
}

// Full single-file name → tensor, over all components.
std::map<std::string, SynthTensor> by_full_name(const SynthModel& model) {
  std::map<std::string, SynthTensor> tensors;
  for (const SynthComponent& c : model.components)
    for (const SynthTensor& t : c.tensors) tensors[c.prefix + t.name] = t;
  return tensors;
}

std::map<std::string, SynthTensor> diffusers_by_name(const SynthComponent& c) {
  std::map<std::string, SynthTensor> tensors;
  for (const SynthTensor& t : c.diffusers_tensors) tensors[t.name] = t;
  return tensors;
}

Shape shape_of(const std::map<std::string, SynthTensor>& tensors, const std::string& name) {
  auto it = tensors.find(name);
  if (it == tensors.end()) return {-1};
  return it->second.shape;
}

uint64_t elements(const Shape& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

struct Counts {
  std::vector<size_t> original;
  std::vector<size_t> diffusers;
};

Counts counts(const SynthModel& model) {
  Counts result;
  for (const SynthComponent& c : model.components) {
    result.original.push_back(c.tensors.size());
    result.diffusers.push_back(c.diffusers_tensors.size());
  }
  return result;
}

// Released checkpoints: v1-5-pruned-emaonly has 1131 tensors (686 UNet, 248 VAE, 196 CLIP
// weights + position_ids), sd_xl_base_1.0 has 2515.
TEST(SynthModelTest, FullSizeTensorCountsMatchTheReleasedCheckpoints) {
  Counts sd1 = counts(build_model(Arch::Sd1, ModelSize::Full));
  EXPECT_THAT(sd1.original, ::testing::ElementsAre(686, 248, 197));
  EXPECT_THAT(sd1.diffusers, ::testing::ElementsAre(686, 248, 197));
  // OpenCLIP ViT-H: 24 blocks of 12 tensors + 6; diffusers keeps 23 layers.
  Counts sd2 = counts(build_model(Arch::Sd2, ModelSize::Full));
  EXPECT_THAT(sd2.original, ::testing::ElementsAre(686, 248, 294));
  EXPECT_THAT(sd2.diffusers, ::testing::ElementsAre(686, 248, 23 * 16 + 5));
  Counts sdxl = counts(build_model(Arch::Sdxl, ModelSize::Full));
  EXPECT_THAT(sdxl.original, ::testing::ElementsAre(1680, 248, 197, 390));
  EXPECT_THAT(sdxl.diffusers, ::testing::ElementsAre(1680, 248, 197, 32 * 16 + 6));
}

// Counted by hand from the tiny configs (see synth_config.cpp).
TEST(SynthModelTest, TinyTensorCounts) {
  EXPECT_THAT(counts(build_model(Arch::Sd1, ModelSize::Tiny)).original,
              ::testing::ElementsAre(286, 124, 37));
  Counts sd2 = counts(build_model(Arch::Sd2, ModelSize::Tiny));
  EXPECT_THAT(sd2.original, ::testing::ElementsAre(286, 124, 30));
  EXPECT_THAT(sd2.diffusers, ::testing::ElementsAre(286, 124, 21));
  Counts sdxl = counts(build_model(Arch::Sdxl, ModelSize::Tiny));
  EXPECT_THAT(sdxl.original, ::testing::ElementsAre(292, 124, 37, 30));
  EXPECT_THAT(sdxl.diffusers, ::testing::ElementsAre(292, 124, 37, 38));
}

TEST(SynthModelTest, Sd1NamesAndShapes) {
  const SynthModel model = build_model(Arch::Sd1, ModelSize::Full);
  const auto t = by_full_name(model);
  const std::string u = "model.diffusion_model.";
  EXPECT_EQ(shape_of(t, u + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"),
            Shape({320, 768}));
  EXPECT_EQ(shape_of(t, u + "input_blocks.1.1.proj_in.weight"), Shape({320, 320, 1, 1}));
  EXPECT_EQ(shape_of(t, u + "input_blocks.3.0.op.weight"), Shape({320, 320, 3, 3}));
  EXPECT_EQ(shape_of(t, u + "input_blocks.4.0.skip_connection.weight"), Shape({640, 320, 1, 1}));
  EXPECT_EQ(shape_of(t, u + "input_blocks.11.0.emb_layers.1.weight"), Shape({1280, 1280}));
  EXPECT_EQ(shape_of(t, u + "input_blocks.10.1.norm.weight"), Shape({-1}));
  EXPECT_EQ(shape_of(t, u + "middle_block.1.transformer_blocks.0.ff.net.0.proj.weight"),
            Shape({10240, 1280}));
  EXPECT_EQ(shape_of(t, u + "output_blocks.2.1.conv.weight"), Shape({1280, 1280, 3, 3}));
  EXPECT_EQ(shape_of(t, u + "output_blocks.3.0.skip_connection.weight"), Shape({1280, 2560, 1, 1}));
  EXPECT_EQ(shape_of(t, u + "output_blocks.5.2.conv.weight"), Shape({1280, 1280, 3, 3}));
  EXPECT_EQ(shape_of(t, u + "output_blocks.9.0.in_layers.0.weight"), Shape({960}));
  EXPECT_EQ(shape_of(t, u + "output_blocks.11.1.proj_out.weight"), Shape({320, 320, 1, 1}));
  EXPECT_EQ(shape_of(t, u + "out.2.weight"), Shape({4, 320, 3, 3}));
  EXPECT_EQ(shape_of(t, u + "time_embed.0.weight"), Shape({1280, 320}));

  const std::string v = "first_stage_model.";
  EXPECT_EQ(shape_of(t, v + "encoder.conv_in.weight"), Shape({128, 3, 3, 3}));
  EXPECT_EQ(shape_of(t, v + "encoder.down.1.block.0.nin_shortcut.weight"), Shape({256, 128, 1, 1}));
  EXPECT_EQ(shape_of(t, v + "encoder.down.3.downsample.conv.weight"), Shape({-1}));
  EXPECT_EQ(shape_of(t, v + "encoder.mid.attn_1.q.weight"), Shape({512, 512, 1, 1}));
  EXPECT_EQ(shape_of(t, v + "encoder.conv_out.weight"), Shape({8, 512, 3, 3}));
  EXPECT_EQ(shape_of(t, v + "decoder.conv_in.weight"), Shape({512, 4, 3, 3}));
  EXPECT_EQ(shape_of(t, v + "decoder.up.0.block.0.nin_shortcut.weight"), Shape({128, 256, 1, 1}));
  EXPECT_EQ(shape_of(t, v + "decoder.up.3.upsample.conv.weight"), Shape({512, 512, 3, 3}));
  EXPECT_EQ(shape_of(t, v + "decoder.up.0.block.2.conv2.weight"), Shape({128, 128, 3, 3}));
  EXPECT_EQ(shape_of(t, v + "quant_conv.weight"), Shape({8, 8, 1, 1}));
  EXPECT_EQ(shape_of(t, v + "post_quant_conv.weight"), Shape({4, 4, 1, 1}));

  const std::string c = "cond_stage_model.transformer.text_model.";
  EXPECT_EQ(shape_of(t, c + "embeddings.token_embedding.weight"), Shape({49408, 768}));
  EXPECT_EQ(shape_of(t, c + "embeddings.position_embedding.weight"), Shape({77, 768}));
  EXPECT_EQ(shape_of(t, c + "embeddings.position_ids"), Shape({1, 77}));
  EXPECT_EQ(t.at(c + "embeddings.position_ids").init, Init::PositionIds);
  EXPECT_EQ(shape_of(t, c + "encoder.layers.11.mlp.fc1.weight"), Shape({3072, 768}));
  EXPECT_EQ(shape_of(t, c + "final_layer_norm.bias"), Shape({768}));
}

TEST(SynthModelTest, Sd2AndSdxlNamesAndShapes) {
  const auto sd2 = by_full_name(build_model(Arch::Sd2, ModelSize::Full));
  EXPECT_EQ(shape_of(sd2, "model.diffusion_model.input_blocks.1.1.proj_in.weight"),
            Shape({320, 320}));
  EXPECT_EQ(
      shape_of(sd2,
               "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"),
      Shape({320, 1024}));
  EXPECT_EQ(shape_of(sd2, "cond_stage_model.model.transformer.resblocks.23.attn.in_proj_weight"),
            Shape({3072, 1024}));
  EXPECT_EQ(shape_of(sd2, "cond_stage_model.model.text_projection"), Shape({1024, 1024}));
  EXPECT_EQ(shape_of(sd2, "cond_stage_model.model.logit_scale"), Shape({}));
  EXPECT_EQ(shape_of(sd2, "cond_stage_model.model.positional_embedding"), Shape({77, 1024}));

  const SynthModel xl = build_model(Arch::Sdxl, ModelSize::Full);
  const auto t = by_full_name(xl);
  const std::string u = "model.diffusion_model.";
  EXPECT_EQ(shape_of(t, u + "label_emb.0.0.weight"), Shape({1280, 2816}));
  EXPECT_EQ(shape_of(t, u + "label_emb.0.2.weight"), Shape({1280, 1280}));
  EXPECT_EQ(shape_of(t, u + "input_blocks.1.1.norm.weight"), Shape({-1}));
  EXPECT_EQ(shape_of(t, u + "input_blocks.4.1.transformer_blocks.1.attn1.to_q.weight"),
            Shape({640, 640}));
  EXPECT_EQ(shape_of(t, u + "input_blocks.7.1.transformer_blocks.9.attn2.to_k.weight"),
            Shape({1280, 2048}));
  EXPECT_EQ(shape_of(t, u + "input_blocks.7.1.transformer_blocks.10.norm1.weight"), Shape({-1}));
  EXPECT_EQ(shape_of(t, u + "middle_block.1.transformer_blocks.9.ff.net.2.weight"),
            Shape({1280, 5120}));
  EXPECT_EQ(shape_of(t, u + "output_blocks.2.2.conv.weight"), Shape({1280, 1280, 3, 3}));
  EXPECT_EQ(shape_of(t, u + "output_blocks.8.0.skip_connection.weight"), Shape({320, 640, 1, 1}));
  EXPECT_EQ(shape_of(t, u + "output_blocks.8.1.norm.weight"), Shape({-1}));
  EXPECT_EQ(shape_of(t, "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"),
            Shape({768}));
  const std::string g = "conditioner.embedders.1.model.";
  EXPECT_EQ(shape_of(t, g + "transformer.resblocks.31.mlp.c_fc.weight"), Shape({5120, 1280}));
  EXPECT_EQ(shape_of(t, g + "text_projection"), Shape({1280, 1280}));
  EXPECT_EQ(shape_of(t, g + "token_embedding.weight"), Shape({49408, 1280}));
}

TEST(SynthModelTest, DiffusersNamesAndShapes) {
  const SynthModel sd1 = build_model(Arch::Sd1, ModelSize::Full);
  const auto unet = diffusers_by_name(component(sd1, "unet"));
  EXPECT_EQ(shape_of(unet, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"),
            Shape({320, 768}));
  EXPECT_EQ(shape_of(unet, "down_blocks.1.resnets.0.conv_shortcut.weight"),
            Shape({640, 320, 1, 1}));
  EXPECT_EQ(shape_of(unet, "down_blocks.2.downsamplers.0.conv.weight"), Shape({1280, 1280, 3, 3}));
  EXPECT_EQ(shape_of(unet, "mid_block.attentions.0.proj_in.weight"), Shape({1280, 1280, 1, 1}));
  EXPECT_EQ(shape_of(unet, "up_blocks.0.upsamplers.0.conv.weight"), Shape({1280, 1280, 3, 3}));
  EXPECT_EQ(shape_of(unet, "up_blocks.3.attentions.2.proj_out.bias"), Shape({320}));
  EXPECT_EQ(shape_of(unet, "up_blocks.3.upsamplers.0.conv.weight"), Shape({-1}));
  EXPECT_EQ(shape_of(unet, "conv_norm_out.weight"), Shape({320}));
  EXPECT_EQ(unet.at("time_embedding.linear_1.weight").source,
            "model.diffusion_model.time_embed.0.weight");

  const auto vae = diffusers_by_name(component(sd1, "vae"));
  EXPECT_EQ(shape_of(vae, "encoder.mid_block.attentions.0.to_q.weight"), Shape({512, 512}));
  EXPECT_EQ(shape_of(vae, "decoder.mid_block.attentions.0.group_norm.weight"), Shape({512}));
  EXPECT_EQ(shape_of(vae, "decoder.up_blocks.0.upsamplers.0.conv.weight"), Shape({512, 512, 3, 3}));
  EXPECT_EQ(shape_of(vae, "decoder.up_blocks.3.resnets.0.conv_shortcut.weight"),
            Shape({128, 256, 1, 1}));
  EXPECT_EQ(vae.at("decoder.up_blocks.3.resnets.0.conv_shortcut.weight").source,
            "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight");

  const SynthModel xl = build_model(Arch::Sdxl, ModelSize::Full);
  const auto xl_unet = diffusers_by_name(component(xl, "unet"));
  EXPECT_EQ(shape_of(xl_unet, "add_embedding.linear_1.weight"), Shape({1280, 2816}));
  const auto g = diffusers_by_name(component(xl, "clip_g"));
  const SynthTensor& projection = g.at("text_projection.weight");
  EXPECT_TRUE(projection.transposed);
  EXPECT_EQ(projection.source, "conditioner.embedders.1.model.text_projection");
  const SynthTensor& k = g.at("text_model.encoder.layers.5.self_attn.k_proj.weight");
  EXPECT_EQ(k.shape, Shape({1280, 1280}));
  EXPECT_EQ(k.source, "conditioner.embedders.1.model.transformer.resblocks.5.attn.in_proj_weight");
  EXPECT_EQ(k.source_offset, 1280u * 1280u);
  EXPECT_EQ(g.at("text_model.encoder.layers.5.self_attn.v_proj.bias").source_offset, 2560u);
  EXPECT_EQ(component(xl, "clip_g").diffusers_config["num_hidden_layers"], 32);
  EXPECT_EQ(component(build_model(Arch::Sd2, ModelSize::Full), "clip")
                .diffusers_config["num_hidden_layers"],
            23);
}

// Every diffusers tensor draws its values from a single-file tensor with as many elements.
TEST(SynthModelTest, DiffusersTensorsMapOntoSingleFileTensors) {
  for (Arch arch : {Arch::Sd1, Arch::Sd2, Arch::Sdxl}) {
    for (ModelSize size : {ModelSize::Tiny, ModelSize::Full}) {
      const SynthModel model = build_model(arch, size);
      const auto originals = by_full_name(model);
      for (const SynthComponent& c : model.components) {
        for (const SynthTensor& t : c.diffusers_tensors) {
          SCOPED_TRACE(c.diffusers_folder + "/" + t.name);
          if (t.init == Init::PositionIds) continue;
          auto source = originals.find(t.source);
          ASSERT_NE(source, originals.end()) << t.source;
          EXPECT_EQ(source->second.init, t.init);
          EXPECT_LE(t.source_offset + elements(t.shape), elements(source->second.shape));
          const bool slice = t.source.find(".attn.in_proj_") != std::string::npos;
          if (!slice) {
            EXPECT_EQ(elements(t.shape), elements(source->second.shape));
          }
        }
      }
    }
  }
}

class SynthFilesTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_ / name; }
  static std::string read(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  SynthOptions tiny(Arch arch, const std::string& output) const {
    SynthOptions options;
    options.arch = arch;
    options.output = path(output);
    return options;
  }

  test::TempDir dir_;
};

// Just enough of a safetensors reader to look at what the writer produced.
struct Safetensors {
  explicit Safetensors(std::string file_bytes) : bytes(std::move(file_bytes)) {
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    header = nlohmann::json::parse(bytes.substr(8, n));
    data_start = 8 + n;
  }
  size_t tensor_count() const { return header.size() - header.contains("__metadata__"); }
  std::string data(const std::string& name) const {
    const auto& offsets = header.at(name).at("data_offsets");
    const uint64_t begin = offsets[0], end = offsets[1];
    return bytes.substr(data_start + begin, end - begin);
  }
  std::string bytes;
  nlohmann::json header;
  size_t data_start;
};

TEST_F(SynthFilesTest, SameSeedGivesIdenticalBytes) {
  SynthOptions a = tiny(Arch::Sd1, "a.safetensors");
  SynthOptions b = tiny(Arch::Sd1, "b.safetensors");
  SynthOptions c = tiny(Arch::Sd1, "c.safetensors");
  c.seed = 1;
  for (const SynthOptions& options : {a, b, c}) write_synthetic(options);
  EXPECT_EQ(read(a.output), read(b.output));
  Safetensors first(read(a.output)), other(read(c.output));
  EXPECT_EQ(first.header, other.header);
  const std::string w = "model.diffusion_model.input_blocks.1.1.proj_in.weight";
  EXPECT_NE(first.data(w), other.data(w));
  EXPECT_EQ(first.data("cond_stage_model.transformer.text_model.embeddings.position_ids"),
            other.data("cond_stage_model.transformer.text_model.embeddings.position_ids"));
}

TEST_F(SynthFilesTest, SingleFileHoldsEveryTensorWithItsShapeAndType) {
  SynthOptions options = tiny(Arch::Sdxl, "xl.safetensors");
  options.dtype = DType::BF16;
  const auto files = write_synthetic(options);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].tensors, 483u);
  Safetensors file(read(options.output));
  EXPECT_EQ(file.tensor_count(), 483u);
  EXPECT_EQ(file.header["__metadata__"]["format"], "pt");
  const auto& label = file.header["model.diffusion_model.label_emb.0.0.weight"];
  EXPECT_EQ(label["dtype"], "BF16");
  EXPECT_EQ(label["shape"], nlohmann::json({128, 80}));
  const auto& ids =
      file.header["conditioner.embedders.0.transformer.text_model.embeddings.position_ids"];
  EXPECT_EQ(ids["dtype"], "I64");
  std::string positions =
      file.data("conditioner.embedders.0.transformer.text_model.embeddings.position_ids");
  ASSERT_EQ(positions.size(), 77u * 8);
  for (int64_t i = 0; i < 77; ++i) {
    int64_t value;
    std::memcpy(&value, positions.data() + i * 8, 8);
    EXPECT_EQ(value, i);
  }
  EXPECT_EQ(file.header["conditioner.embedders.1.model.logit_scale"]["shape"],
            nlohmann::json::array());
}

TEST_F(SynthFilesTest, OneComponentIsWrittenWithoutItsPrefix) {
  SynthOptions options = tiny(Arch::Sd1, "vae.safetensors");
  options.components = {"vae"};
  write_synthetic(options);
  Safetensors file(read(options.output));
  EXPECT_EQ(file.tensor_count(), 124u);
  EXPECT_TRUE(file.header.contains("encoder.conv_in.weight"));
  EXPECT_TRUE(file.header.contains("post_quant_conv.bias"));

  SynthOptions two = tiny(Arch::Sdxl, "clip.safetensors");
  two.components = {"clip"};
  write_synthetic(two);
  Safetensors clips(read(two.output));
  EXPECT_EQ(clips.tensor_count(), 37u + 30u);
  EXPECT_TRUE(clips.header.contains("conditioner.embedders.1.model.ln_final.weight"));

  SynthOptions unknown = tiny(Arch::Sd1, "x.safetensors");
  unknown.components = {"clip_g"};
  try {
    write_synthetic(unknown);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown component 'clip_g'"));
  }
}

// With one seed, the diffusers folder and the single file hold the same model.
TEST_F(SynthFilesTest, DiffusersLayoutHoldsTheSameValues) {
  SynthOptions single = tiny(Arch::Sdxl, "xl.safetensors");
  SynthOptions diffusers = tiny(Arch::Sdxl, "xl");
  diffusers.layout = Layout::Diffusers;
  single.dtype = diffusers.dtype = DType::F32;
  write_synthetic(single);
  write_synthetic(diffusers);
  Safetensors s(read(single.output));
  Safetensors unet(read(dir_ / "xl/unet/diffusion_pytorch_model.safetensors"));
  Safetensors vae(read(dir_ / "xl/vae/diffusion_pytorch_model.safetensors"));
  Safetensors g(read(dir_ / "xl/text_encoder_2/model.safetensors"));
  EXPECT_EQ(unet.data("add_embedding.linear_1.weight"),
            s.data("model.diffusion_model.label_emb.0.0.weight"));
  EXPECT_EQ(
      unet.data("up_blocks.0.attentions.1.transformer_blocks.1.attn2.to_v.weight"),
      s.data("model.diffusion_model.output_blocks.1.1.transformer_blocks.1.attn2.to_v.weight"));
  EXPECT_EQ(vae.data("encoder.mid_block.attentions.0.to_q.weight"),
            s.data("first_stage_model.encoder.mid.attn_1.q.weight"));
  EXPECT_EQ(vae.data("decoder.up_blocks.1.resnets.0.conv_shortcut.weight"),
            s.data("first_stage_model.decoder.up.0.block.0.nin_shortcut.weight"));

  const std::string in_proj =
      s.data("conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_weight");
  const size_t block = 32 * 32 * 4;
  EXPECT_EQ(g.data("text_model.encoder.layers.1.self_attn.q_proj.weight"),
            in_proj.substr(0, block));
  EXPECT_EQ(g.data("text_model.encoder.layers.1.self_attn.v_proj.weight"),
            in_proj.substr(2 * block, block));
  const std::string projection = s.data("conditioner.embedders.1.model.text_projection");
  const std::string transposed = g.data("text_projection.weight");
  for (int r = 0; r < 32; ++r)
    for (int c = 0; c < 32; ++c)
      ASSERT_EQ(transposed.substr((r * 32 + c) * 4, 4), projection.substr((c * 32 + r) * 4, 4));
}

TEST_F(SynthFilesTest, DiffusersLayoutWritesModelIndexAndShardIndex) {
  SynthOptions options = tiny(Arch::Sdxl, "xl");
  options.layout = Layout::Diffusers;
  options.shard_bytes = 400'000;
  write_synthetic(options);
  const fs::path root = dir_ / "xl";
  const auto index = nlohmann::json::parse(read(root / "model_index.json"));
  EXPECT_EQ(index["_class_name"], "StableDiffusionXLPipeline");
  EXPECT_EQ(index["unet"], nlohmann::json({"diffusers", "UNet2DConditionModel"}));
  EXPECT_EQ(index["text_encoder_2"],
            nlohmann::json({"transformers", "CLIPTextModelWithProjection"}));
  EXPECT_EQ(index["scheduler"], nlohmann::json({"diffusers", "EulerDiscreteScheduler"}));
  EXPECT_TRUE(fs::exists(root / "scheduler/scheduler_config.json"));
  const auto unet_config = nlohmann::json::parse(read(root / "unet/config.json"));
  EXPECT_EQ(unet_config["projection_class_embeddings_input_dim"], 80);
  EXPECT_EQ(unet_config["down_block_types"],
            nlohmann::json({"DownBlock2D", "CrossAttnDownBlock2D"}));

  const auto shards =
      nlohmann::json::parse(read(root / "unet/diffusion_pytorch_model.safetensors.index.json"));
  const auto& map = shards.at("weight_map");
  EXPECT_EQ(map.size(), 292u);
  std::map<std::string, size_t> per_file;
  for (const auto& [name, file] : map.items()) per_file[file.get<std::string>()] += 1;
  ASSERT_GT(per_file.size(), 1u);
  uint64_t total = 0;
  size_t k = 1;
  for (const auto& [file, count] : per_file) {
    EXPECT_EQ(file, fmt::format("diffusion_pytorch_model-{:05d}-of-{:05d}.safetensors", k++,
                                per_file.size()));
    Safetensors shard(read(root / "unet" / file));
    EXPECT_EQ(shard.tensor_count(), count);
    total += shard.bytes.size() - shard.data_start;
  }
  EXPECT_EQ(shards.at("metadata").at("total_size"), total);
  EXPECT_FALSE(fs::exists(root / "unet/diffusion_pytorch_model.safetensors"));
}

TEST_F(SynthFilesTest, DiffusersLayoutOfOneComponentIsThatModelsFolder) {
  SynthOptions options = tiny(Arch::Sd2, "vae");
  options.layout = Layout::Diffusers;
  options.components = {"vae"};
  const auto files = write_synthetic(options);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].path, path("vae/diffusion_pytorch_model.safetensors"));
  EXPECT_EQ(Safetensors(read(files[0].path)).tensor_count(), 124u);
  EXPECT_EQ(nlohmann::json::parse(read(dir_ / "vae/config.json"))["_class_name"], "AutoencoderKL");
  EXPECT_FALSE(fs::exists(dir_ / "vae/model_index.json"));
}

TEST_F(SynthFilesTest, GgufHoldsQuantizedUNetMatrices) {
  SynthOptions options = tiny(Arch::Sd1, "sd1.gguf");
  options.format = Format::Gguf;
  options.quant = DType::Q8_0;
  write_synthetic(options);
  const std::string bytes = read(options.output);
  ASSERT_GT(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(0, 4), "GGUF");
  uint64_t tensors;
  std::memcpy(&tensors, bytes.data() + 8, 8);
  EXPECT_EQ(tensors, 447u);
}

TEST_F(SynthFilesTest, GgufHoldsTheFloatFilesValuesConvertedOrQuantized) {
  SynthOptions float_file = tiny(Arch::Sd1, "unet.safetensors");
  float_file.components = {"unet"};
  write_synthetic(float_file);
  SynthOptions gguf = float_file;
  gguf.output = path("unet.gguf");
  gguf.format = Format::Gguf;
  gguf.quant = DType::Q8_0;
  write_synthetic(gguf);
  const ModelSource original = ModelSource::open({.diffusion_model = float_file.output});
  const ModelSource converted = ModelSource::open({.diffusion_model = gguf.output});
  std::map<DType, int> seen;
  for (const IndexedTensor& t : converted.tensors()) {
    const IndexedTensor* o = original.find("diffusion_model", t.info.name);
    ASSERT_NE(o, nullptr) << t.info.name;
    const auto values = [](const ModelSource& source, const IndexedTensor& x) {
      std::vector<float> v(static_cast<size_t>(shape_numel(x.info.shape)));
      dequantize_to_f32(x.info.dtype, source.bytes(x).data(), v.data(), v.size());
      return v;
    };
    const std::vector<float> q = values(converted, t), f = values(original, *o);
    ++seen[t.info.dtype];
    if (t.info.dtype != DType::Q8_0) {
      EXPECT_EQ(q, f) << t.info.name;
      continue;
    }
    for (size_t b = 0; b < f.size(); b += 32) {
      float amax = 0;
      for (size_t j = b; j < b + 32; ++j) amax = std::max(amax, std::fabs(f[j]));
      for (size_t j = b; j < b + 32; ++j) ASSERT_LE(std::fabs(q[j] - f[j]), amax / 127) << j;
    }
  }
  EXPECT_GT(seen[DType::Q8_0], 0);
  EXPECT_GT(seen[DType::F32], 0);
  EXPECT_GT(seen[DType::F16], 0);
}

TEST_F(SynthFilesTest, InvalidOptionCombinationsAreRejected) {
  auto expect_error = [&](SynthOptions options, const std::string& text) {
    try {
      write_synthetic(options);
      ADD_FAILURE() << "expected an error mentioning " << text;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(text));
    }
  };
  SynthOptions quant = tiny(Arch::Sd1, "x.safetensors");
  quant.quant = DType::Q4_0;
  expect_error(quant, "--quant needs --format gguf");
  SynthOptions gguf = tiny(Arch::Sd1, "x");
  gguf.format = Format::Gguf;
  gguf.layout = Layout::Diffusers;
  expect_error(gguf, "--layout single");
  SynthOptions shard = tiny(Arch::Sd1, "x.safetensors");
  shard.shard_bytes = 1000;
  expect_error(shard, "--shard-mb");
  SynthOptions exists = tiny(Arch::Sd1, "x.safetensors");
  write_synthetic(exists);
  expect_error(exists, "refusing to overwrite existing file");
}

TEST(SynthFillTest, ValuesDoNotDependOnChunking) {
  for (DType type : {DType::F16, DType::BF16, DType::F32, DType::Q4_K, DType::Q8_0}) {
    const uint64_t unit = dtype_info(type).block_bytes;
    std::vector<std::byte> whole(unit * 300), pieces(unit * 300);
    synth_fill(type, whole, 5, 42, 0, {0.0f, 0.04f});
    for (uint64_t at = 0; at < 300; at += 7) {
      const uint64_t count = std::min<uint64_t>(7, 300 - at);
      synth_fill(type, std::span(pieces).subspan(at * unit, count * unit), 5, 42, at * unit,
                 {0.0f, 0.04f});
    }
    EXPECT_EQ(whole, pieces) << dtype_name(type);
  }
}

TEST(SynthFillTest, HalfValuesStayInRange) {
  std::vector<std::byte> bytes(2 * 10000);
  synth_fill(DType::F16, bytes, 1, 2, 0, {1.0f, 0.02f});
  float low = 2, high = 0;
  for (size_t i = 0; i < 10000; ++i) {
    uint16_t bits;
    std::memcpy(&bits, bytes.data() + 2 * i, 2);
    low = std::min(low, f16_to_f32(bits));
    high = std::max(high, f16_to_f32(bits));
  }
  // Bounds widened by half an f16 step near 1.
  EXPECT_GE(low, 0.98f - 0x1p-12f);
  EXPECT_LE(high, 1.02f + 0x1p-11f);
  EXPECT_LT(low, 0.985f);
  EXPECT_GT(high, 1.015f);
}

TEST(SynthFillTest, QuantizedBlocksDecodeWithinTheirAmplitude) {
  for (DType type : {DType::Q4_K, DType::Q8_0, DType::Q8_K, DType::IQ4_XS}) {
    const uint64_t block = dtype_info(type).block_bytes, elems = dtype_info(type).block_elems;
    std::vector<std::byte> bytes(block * 50);
    synth_fill(type, bytes, 3, 9, 0, {0.0f, 0.04f});
    std::vector<float> values(elems * 50);
    dequantize_to_f32(type, bytes.data(), values.data(), values.size());
    float largest = 0;
    for (float v : values) {
      ASSERT_TRUE(std::isfinite(v)) << dtype_name(type);
      largest = std::max(largest, std::fabs(v));
    }
    EXPECT_LE(largest, 0.04f) << dtype_name(type);
    EXPECT_GT(largest, 0.01f) << dtype_name(type);
  }
}

}  // namespace
}  // namespace ebb::synth
