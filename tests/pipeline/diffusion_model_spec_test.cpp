// The model spec read from tensor shapes: the tiny checkpoints give their manifest structure
// (widths, depths, context, SDXL's added condition); a checkpoint without a UNet is an error.
#include "pipeline/diffusion_model_spec.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "models/sd_text_references.h"
#include "support/sd_unet_config.h"

namespace ebb {
namespace {

class DiffusionModelSpecTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DiffusionModelSpecTest, StructureComesFromTheTensorShapes) {
  const std::string arch = GetParam();
  const sd_test::SdCheckpoint checkpoint(arch);
  const DiffusionModelSpec spec = diffusion_model_spec(checkpoint.source);
  const UNetConfig expected =
      sd_test::config_from_diffusers(sd_test::sd_arch(arch).at("configs").at("unet"));
  EXPECT_EQ(spec.unet.in_channels, expected.in_channels);
  EXPECT_EQ(spec.unet.out_channels, expected.out_channels);
  EXPECT_EQ(spec.unet.model_channels, expected.model_channels);
  EXPECT_EQ(spec.unet.channel_mult, expected.channel_mult);
  EXPECT_EQ(spec.unet.num_res_blocks, expected.num_res_blocks);
  EXPECT_EQ(spec.unet.transformer_depth, expected.transformer_depth);
  EXPECT_EQ(spec.unet.middle_transformer_depth, expected.middle_transformer_depth);
  EXPECT_EQ(spec.unet.context_dim, expected.context_dim);
  EXPECT_EQ(spec.unet.adm_in_channels, expected.adm_in_channels);
  EXPECT_EQ(spec.unet.time_id_dim, expected.time_id_dim);
  EXPECT_EQ(spec.unet.heads.size(), expected.heads.size());
  EXPECT_EQ(spec.vae.downscale(), sd_test::sd_arch(arch).at("vae_downscale").get<int64_t>());
  EXPECT_FLOAT_EQ(spec.vae_scaling_factor,
                  sd_test::sd_arch(arch).at("vae_scaling_factor").get<float>());
  const bool v = sd_test::sd_arch(arch).at("prediction") == "v_prediction";
  EXPECT_EQ(spec.prediction, v ? Prediction::v : Prediction::epsilon);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, DiffusionModelSpecTest,
                         ::testing::Values("sd1", "sd2", "sdxl"));

TEST(DiffusionModelSpec, AModelWithoutAUNetIsAnError) {
  const ModelSource vae_only = ModelSource::open({.model = "",
                                                  .diffusion_model = "",
                                                  .clip_l = "",
                                                  .clip_g = "",
                                                  .t5xxl = "",
                                                  .vae = sd_test::kSdDir + "sd1-tiny.safetensors"});
  EXPECT_THROW(diffusion_model_spec(vae_only), Error);
}

}  // namespace
}  // namespace ebb
