#include "models/text_conditioning.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "models/clip.h"
#include "models/sd_text_references.h"

namespace ebb {
namespace {

using sd_test::SdCheckpoint;
using sd_test::SdReferences;

const ClipTokenizer& tokenizer() {
  static const ClipTokenizer instance(std::filesystem::path(EBB_TEST_DATA_DIR) /
                                      "../../assets/vocab/clip/bpe_simple_vocab_16e6.txt.gz");
  return instance;
}

std::string prompt(int index) {
  return sd_test::sd_manifest().at("prompts").at(index).get<std::string>();
}

struct ArchCase {
  std::string name;
  Architecture arch;
};

const std::vector<ArchCase> kArchs = {
    {"sd1", Architecture::SD1}, {"sd2", Architecture::SD2}, {"sdxl", Architecture::SDXL}};

// The tiny encoders have 4 heads of 8 channels (manifest configs), not CLIP's 64-wide heads.
TextConditioningOptions tiny_options() {
  return {.clip_l_heads = 4, .open_clip_heads = 4};
}

TEST(TextConditioning, WindowsAreTheReferenceTokenIds) {
  for (const ArchCase& c : kArchs) {
    SdCheckpoint checkpoint(c.name);
    const SdReferences refs(c.name);
    const TextConditioner conditioner(checkpoint.store, c.arch, tokenizer(), tiny_options());
    for (const auto& [encoder, entry] : sd_test::sd_arch(c.name).at("text_encoders").items()) {
      const bool open_clip = entry.at("open_clip").get<bool>();
      for (int p = 0; p < 4; ++p) {
        const ClipWindows w = conditioner.windows(prompt(p), open_clip);
        EXPECT_EQ(w.ids, refs.ids("prompt" + std::to_string(p) + "." + encoder + ".ids"))
            << c.name << " " << encoder << " prompt " << p;
      }
    }
  }
}

TEST(TextConditioning, ContextMatchesDiffusers) {
  for (const ArchCase& c : kArchs) {
    SdCheckpoint checkpoint(c.name);
    const SdReferences refs(c.name);
    CpuBackend backend(1);
    const TextConditioner conditioner(checkpoint.store, c.arch, tokenizer(), tiny_options());
    for (int p = 0; p < 4; ++p) {
      const std::string key = "prompt" + std::to_string(p) + ".";
      const TextConditioning cond = conditioner.encode(backend, prompt(p));
      const double context = refs.expect_close(key + "context", backend.to_floats(cond.context));
      double pooled = 0;
      if (c.arch == Architecture::SDXL)
        pooled = refs.expect_close(key + "open_clip_g.text_embeds", backend.to_floats(cond.pooled));
      else
        EXPECT_FALSE(cond.pooled.defined());
      std::printf("%s\n", fmt::format("{} {}: max |diff| context {:.3g} pooled {:.3g}", c.name, key,
                                      context, pooled)
                              .c_str());
    }
  }
}

TEST(TextConditioning, ClipSkipTwoOnSd1IsThePenultimateLayerNormed) {
  SdCheckpoint checkpoint("sd1");
  const SdReferences refs("sd1");
  CpuBackend backend(1);
  TextConditioningOptions options = tiny_options();
  options.clip_skip = 2;
  const TextConditioner conditioner(checkpoint.store, Architecture::SD1, tokenizer(), options);
  refs.expect_close("prompt2.clip_l.penultimate_normed",
                    backend.to_floats(conditioner.encode(backend, prompt(2)).context));
  options.clip_skip = 3;  // the tiny encoder has 2 layers
  const TextConditioner too_deep(checkpoint.store, Architecture::SD1, tokenizer(), options);
  EXPECT_THROW(too_deep.encode(backend, prompt(2)), Error);
}

// Windows encode on their own and concatenate along the tokens; pooled comes from the first.
TEST(TextConditioning, LongPromptsConcatenateWindows) {
  SdCheckpoint checkpoint("sdxl");
  CpuBackend backend(1);
  const TextConditioner conditioner(checkpoint.store, Architecture::SDXL, tokenizer(),
                                    tiny_options());
  const std::string long_prompt = prompt(3) + ", " + prompt(2);
  const ClipWindows windows = conditioner.windows(long_prompt, true);
  ASSERT_EQ(windows.count(), 2u);
  const TextConditioning cond = conditioner.encode(backend, long_prompt);
  ASSERT_EQ(cond.context.shape(), (Shape{1, 154, 64}));

  const ClipTextTransformer big_g = make_open_clip_text_encoder(checkpoint.store, "clip_g", 4);
  const std::vector<float> context = backend.to_floats(cond.context);
  for (size_t w = 0; w < 2; ++w) {
    const auto ids = std::span(windows.ids).subspan(w * 77, 77);
    const ClipTextOutput alone =
        big_g.run(backend, ids, {.skip = 2, .final_norm = false, .last_normed = true});
    const std::vector<float> expected = backend.to_floats(alone.hidden);
    for (size_t t = 0; t < 77; ++t)
      for (size_t ch = 0; ch < 32; ++ch)
        ASSERT_EQ(context[((w * 77) + t) * 64 + 32 + ch], expected[t * 32 + ch])
            << "window " << w << " token " << t;
    if (w == 0) {
      EXPECT_EQ(backend.to_floats(cond.pooled),
                backend.to_floats(open_clip_pooled(backend, big_g, alone.last_normed, ids)));
    }
  }
}

// A1111 emphasis against a naive double-precision reference on the unweighted output.
TEST(TextConditioning, EmphasisScalesTokensAndKeepsTheMean) {
  SdCheckpoint checkpoint("sd1");
  CpuBackend backend(1);
  const TextConditioner conditioner(checkpoint.store, Architecture::SD1, tokenizer(),
                                    tiny_options());
  const std::string weighted = "a (red:1.5) cube on [[a blue sphere]], (studio lighting:0.3)";
  const ClipWindows windows = conditioner.windows(weighted, false);
  ASSERT_EQ(windows.count(), 1u);
  size_t emphasised = 0;
  for (float w : windows.weights) emphasised += w != 1.0f;
  EXPECT_GT(emphasised, 5u);

  const ClipTextTransformer clip_l = make_clip_text_encoder(checkpoint.store, "clip_l", 4);
  const std::vector<float> plain = backend.to_floats(clip_l.run(backend, windows.ids, {}).hidden);
  double before = 0, after = 0;
  std::vector<double> expected(plain.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    expected[i] = static_cast<double>(plain[i]) * windows.weights[i / 32];
    before += plain[i];
    after += expected[i];
  }
  const std::vector<float> actual =
      backend.to_floats(conditioner.encode(backend, weighted).context);
  ASSERT_EQ(actual.size(), expected.size());
  double actual_sum = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i] * before / after, 1e-5 * (1 + std::fabs(expected[i])));
    actual_sum += actual[i];
  }
  EXPECT_NEAR(actual_sum, before, 1e-4 * (1 + std::fabs(before)));
}

TEST(TextConditioning, RejectsWhatItCannotEncode) {
  SdCheckpoint checkpoint("sd1");
  EXPECT_THROW(TextConditioner(checkpoint.store, Architecture::Flux, tokenizer(), tiny_options()),
               Error);
  // An SD1 file has no OpenCLIP encoder.
  EXPECT_THROW(TextConditioner(checkpoint.store, Architecture::SDXL, tokenizer(), tiny_options()),
               Error);
  TextConditioningOptions negative = tiny_options();
  negative.clip_skip = -1;
  EXPECT_THROW(TextConditioner(checkpoint.store, Architecture::SD1, tokenizer(), negative), Error);
}

}  // namespace
}  // namespace ebb
