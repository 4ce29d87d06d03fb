#include "models/open_clip.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "models/sd_text_references.h"

namespace ebb {
namespace {

using sd_test::SdCheckpoint;
using sd_test::SdReferences;

// Hidden states of an OpenCLIP text tower, and the pooled embedding where the manifest has it.
void check_open_clip(const std::string& arch, const std::string& encoder_name,
                     const std::string& component, bool pooled) {
  SdCheckpoint checkpoint(arch);
  const SdReferences refs(arch);
  CpuBackend backend(1);
  const ClipTextTransformer encoder = make_open_clip_text_encoder(
      checkpoint.store, component, sd_test::sd_encoder_heads(arch, encoder_name));
  EXPECT_EQ(encoder.layers(), 2);
  for (int p = 0; p < 4; ++p) {
    const std::string key = "prompt" + std::to_string(p) + "." + encoder_name + ".";
    const std::vector<int32_t> ids = refs.ids(key + "ids");
    const ClipTextOutput penultimate =
        encoder.run(backend, ids, {.skip = 2, .final_norm = false, .last_normed = true});
    const double last =
        refs.expect_close(key + "last_hidden_state", backend.to_floats(penultimate.last_normed));
    const double raw =
        refs.expect_close(key + "penultimate", backend.to_floats(penultimate.hidden));
    const double normed =
        refs.expect_close(key + "penultimate_normed",
                          backend.to_floats(encoder.run(backend, ids, {.skip = 2}).hidden));
    double pooled_diff = 0;
    if (pooled)
      pooled_diff = refs.expect_close(
          key + "text_embeds",
          backend.to_floats(open_clip_pooled(backend, encoder, penultimate.last_normed, ids)));
    std::printf("%s\n", fmt::format("{} {}: max |diff| last {:.3g} penultimate {:.3g} normed "
                                    "{:.3g} text_embeds {:.3g}",
                                    arch, key, last, raw, normed, pooled_diff)
                            .c_str());
  }
}

TEST(OpenClipTextEncoder, Sd2MatchesTransformers) {
  check_open_clip("sd2", "open_clip_h", "clip_h", false);
}
TEST(OpenClipTextEncoder, SdxlBigGMatchesTransformers) {
  check_open_clip("sdxl", "open_clip_g", "clip_g", true);
}

TEST(OpenClipTextEncoder, PoolingChecksItsInput) {
  SdCheckpoint checkpoint("sdxl");
  CpuBackend backend(1);
  const ClipTextTransformer encoder = make_open_clip_text_encoder(checkpoint.store, "clip_g", 4);
  const std::vector<int32_t> ids = {49406, 320, 49407, 0};
  const ClipTextOutput out = encoder.run(backend, ids, {.last_normed = true});
  EXPECT_EQ(open_clip_pooled(backend, encoder, out.last_normed, ids).shape(), (Shape{1, 32}));
  const std::vector<int32_t> shorter = {49406, 49407};
  EXPECT_THROW(open_clip_pooled(backend, encoder, out.last_normed, shorter), Error);
}

}  // namespace
}  // namespace ebb
