// The diffusers → single-file renaming of the UNet and VAE, against ebb-synth's models, which
// list every tensor in both namings (tools/synth, written from the released configs): each
// diffusers tensor must get the single-file name and shape of the tensor it holds, for SD 1.x,
// 2.x and XL at full size.
#include "io/diffusers_names.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/expect_error.h"
#include "synth/synth_model.h"

namespace ebb {
namespace {

void expect_renamed_as_synth(synth::Arch arch) {
  for (const synth::SynthComponent& c :
       synth::build_model(arch, synth::ModelSize::Full).components) {
    if (c.kind == synth::ComponentKind::TextEncoder) continue;
    SCOPED_TRACE(std::string(synth::arch_name(arch)) + " " + c.name);
    std::map<std::string, std::vector<int64_t>> original;
    for (const synth::SynthTensor& t : c.tensors) original[c.prefix + t.name] = t.shape;
    std::vector<TensorInfo> infos;
    std::vector<std::string> sources;
    for (const synth::SynthTensor& t : c.diffusers_tensors) {
      ASSERT_EQ(t.source_offset, 0u) << t.name;
      ASSERT_FALSE(t.transposed) << t.name;
      infos.push_back({.name = t.name, .shape = t.shape});
      sources.push_back(t.source.empty() ? c.prefix + t.name : t.source);
    }
    std::vector<TensorInfo*> pointers;
    for (TensorInfo& t : infos) pointers.push_back(&t);
    rename_diffusers_tensors(
        c.kind == synth::ComponentKind::Unet ? DiffusersModel::UNet : DiffusersModel::Vae, pointers,
        "synth");
    ASSERT_EQ(infos.size(), original.size());
    for (size_t i = 0; i < infos.size(); ++i) {
      EXPECT_EQ(c.prefix + infos[i].name, sources[i]) << c.diffusers_tensors[i].name;
      EXPECT_EQ(infos[i].shape, original[sources[i]]) << c.diffusers_tensors[i].name;
    }
  }
}

TEST(DiffusersNamesTest, Sd1UNetAndVae) {
  expect_renamed_as_synth(synth::Arch::Sd1);
}
TEST(DiffusersNamesTest, Sd2UNetAndVae) {
  expect_renamed_as_synth(synth::Arch::Sd2);
}
TEST(DiffusersNamesTest, SdxlUNetAndVae) {
  expect_renamed_as_synth(synth::Arch::Sdxl);
}

TEST(DiffusersNamesTest, OlderVaeAttentionNamesAndUnknownBlocks) {
  std::vector<TensorInfo> infos = {
      {.name = "decoder.up_blocks.0.resnets.0.conv1.weight", .shape = {4, 4, 3, 3}},
      {.name = "decoder.mid_block.attentions.0.query.weight", .shape = {4, 4}},
      {.name = "decoder.mid_block.attentions.0.proj_attn.bias", .shape = {4}},
      {.name = "decoder.mid_block.attentions.0.group_norm.weight", .shape = {4}},
      {.name = "post_quant_conv.weight", .shape = {4, 4, 1, 1}},
  };
  std::vector<TensorInfo*> pointers;
  for (TensorInfo& t : infos) pointers.push_back(&t);
  rename_diffusers_tensors(DiffusersModel::Vae, pointers, "vae");
  EXPECT_EQ(infos[0].name, "decoder.up.0.block.0.conv1.weight");
  EXPECT_EQ(infos[1].name, "decoder.mid.attn_1.q.weight");
  EXPECT_EQ(infos[1].shape, (std::vector<int64_t>{4, 4, 1, 1}));
  EXPECT_EQ(infos[2].name, "decoder.mid.attn_1.proj_out.bias");
  EXPECT_EQ(infos[3].name, "decoder.mid.attn_1.norm.weight");
  EXPECT_EQ(infos[4].name, "post_quant_conv.weight");

  TensorInfo stray{.name = "mid_block.extra.weight", .shape = {1}};
  std::vector<TensorInfo*> one = {&stray};
  test::expect_error_with([&] { rename_diffusers_tensors(DiffusersModel::UNet, one, "unet/x"); },
                          {"unet/x", "mid_block.extra.weight"});
}

}  // namespace
}  // namespace ebb
