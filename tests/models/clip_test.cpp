#include "models/clip.h"

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

// Every output of CLIP-L the pipelines use, for the four manifest prompts.
void check_clip_l(const std::string& arch) {
  SdCheckpoint checkpoint(arch);
  const SdReferences refs(arch);
  CpuBackend backend(1);
  const ClipTextTransformer encoder =
      make_clip_text_encoder(checkpoint.store, "clip_l", sd_test::sd_encoder_heads(arch, "clip_l"));
  EXPECT_EQ(encoder.layers(), 2);
  EXPECT_EQ(encoder.width(), 32);
  for (int p = 0; p < 4; ++p) {
    const std::string key = "prompt" + std::to_string(p) + ".clip_l.";
    const std::vector<int32_t> ids = refs.ids(key + "ids");
    const double last =
        refs.expect_close(key + "last_hidden_state",
                          backend.to_floats(encoder.run(backend, ids, {.skip = 1}).hidden));
    const double penultimate = refs.expect_close(
        key + "penultimate",
        backend.to_floats(encoder.run(backend, ids, {.skip = 2, .final_norm = false}).hidden));
    const double normed =
        refs.expect_close(key + "penultimate_normed",
                          backend.to_floats(encoder.run(backend, ids, {.skip = 2}).hidden));
    std::printf("%s\n",
                fmt::format("{} {}: max |diff| last {:.3g} penultimate {:.3g} normed {:.3g}", arch,
                            key, last, penultimate, normed)
                    .c_str());
  }
}

TEST(ClipTextEncoder, Sd1MatchesTransformers) {
  check_clip_l("sd1");
}
TEST(ClipTextEncoder, SdxlFirstEncoderMatchesTransformers) {
  check_clip_l("sdxl");
}

TEST(ClipTextEncoder, LastNormedIsTheLastHiddenState) {
  SdCheckpoint checkpoint("sd1");
  const SdReferences refs("sd1");
  CpuBackend backend(2);
  const ClipTextTransformer encoder = make_clip_text_encoder(checkpoint.store, "clip_l", 4);
  const std::vector<int32_t> ids = refs.ids("prompt0.clip_l.ids");
  const ClipTextOutput out =
      encoder.run(backend, ids, {.skip = 2, .final_norm = false, .last_normed = true});
  refs.expect_close("prompt0.clip_l.penultimate", backend.to_floats(out.hidden));
  refs.expect_close("prompt0.clip_l.last_hidden_state", backend.to_floats(out.last_normed));
}

TEST(ClipTextEncoder, RejectsBadInput) {
  SdCheckpoint checkpoint("sd1");
  CpuBackend backend(1);
  const ClipTextTransformer encoder = make_clip_text_encoder(checkpoint.store, "clip_l", 4);
  const std::vector<int32_t> out_of_vocab = {49406, 49408, 49407};
  EXPECT_THROW(encoder.run(backend, out_of_vocab, {}), Error);
  const std::vector<int32_t> too_long(78, 49407);
  EXPECT_THROW(encoder.run(backend, too_long, {}), Error);
  const std::vector<int32_t> ok = {49406, 49407};
  EXPECT_THROW(encoder.run(backend, ok, {.skip = 3}), Error);
  EXPECT_THROW(encoder.run(backend, ok, {.skip = 0}), Error);
  // No default head count for a width that is not a multiple of 64.
  EXPECT_THROW(make_clip_text_encoder(checkpoint.store, "clip_l"), Error);
  // SD1 has no OpenCLIP encoder; its CLIP-L is not in transformers names under clip_g.
  EXPECT_THROW(make_clip_text_encoder(checkpoint.store, "clip_g", 4), Error);
}

TEST(ClipTextEncoder, MissingTensorIsNamed) {
  SdCheckpoint checkpoint("sd2");  // OpenCLIP names: no text_model.* tensors
  try {
    make_clip_text_encoder(checkpoint.store, "clip_h", 4);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text_model.embeddings.token_embedding.weight"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ebb
