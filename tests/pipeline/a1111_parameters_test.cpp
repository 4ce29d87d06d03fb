#include "pipeline/a1111_parameters.h"

#include <gtest/gtest.h>

#include <string>

namespace ebb {
namespace {

GenerationParams cat_params() {
  GenerationParams p;
  p.prompt = "a photo of a cat";
  p.negative_prompt = "blurry";
  p.steps = 20;
  p.sampler = Sampler::euler_a;
  p.schedule = Schedule::karras;
  p.cfg_scale = 7;
  p.seed = 42;
  p.width = 512;
  p.height = 768;
  p.model_hash = "6ce0161689";
  p.model = "v1-5-pruned-emaonly";
  p.version = "ebb 0.1.0";
  return p;
}

TEST(A1111Parameters, Txt2ImgInA1111Order) {
  EXPECT_EQ(a1111_parameters(cat_params()),
            "a photo of a cat\n"
            "Negative prompt: blurry\n"
            "Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42, "
            "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
            "Version: ebb 0.1.0");
}

TEST(A1111Parameters, Img2ImgStrengthComesBeforeClipSkip) {
  GenerationParams p = cat_params();
  p.negative_prompt.clear();
  p.model_hash.clear();
  p.version.clear();
  p.cfg_scale = 7.5;
  p.seed = -1234567890123;
  p.denoising_strength = 0.75;
  p.clip_skip = 2;
  p.sampler = Sampler::dpmpp_2m;
  p.schedule = Schedule::discrete;
  EXPECT_EQ(a1111_parameters(p),
            "a photo of a cat\n"
            "Steps: 20, Sampler: DPM++ 2M, Schedule type: Uniform, CFG scale: 7.5, "
            "Seed: -1234567890123, Size: 512x768, Model: v1-5-pruned-emaonly, "
            "Denoising strength: 0.75, Clip skip: 2");
}

TEST(A1111Parameters, ClipSkipOneIsLeftOut) {
  GenerationParams p = cat_params();
  p.clip_skip = 1;
  EXPECT_EQ(a1111_parameters(p).find("Clip skip"), std::string::npos);
}

TEST(A1111Parameters, ValuesThatWouldSplitTheListAreJsonQuoted) {
  GenerationParams p = cat_params();
  p.model = "sdxl: \"base\", v1\nb";
  std::string text = a1111_parameters(p);
  EXPECT_NE(text.find(R"(Model: "sdxl: \"base\", v1\nb",)"), std::string::npos) << text;
  p.model = "caf\xc3\xa9, ok";  // non-ASCII stays as UTF-8, as json.dumps(ensure_ascii=False)
  text = a1111_parameters(p);
  EXPECT_NE(text.find("Model: \"caf\xc3\xa9, ok\","), std::string::npos) << text;
}

TEST(A1111Parameters, PromptsAreWrittenAsTheyAre) {
  GenerationParams p = cat_params();
  p.prompt = "(cat:1.2), \xe7\x8c\xab\nsecond line";
  p.negative_prompt = "a, b: c";
  std::string text = a1111_parameters(p);
  EXPECT_EQ(
      text.rfind("(cat:1.2), \xe7\x8c\xab\nsecond line\nNegative prompt: a, b: c\nSteps: 20,", 0),
      0u)
      << text;
}

TEST(A1111Parameters, EmptyPromptIsTrimmedAway) {
  GenerationParams p = cat_params();
  p.prompt = "";
  EXPECT_EQ(a1111_parameters(p).rfind("Negative prompt: blurry\nSteps: 20,", 0), 0u);
}

TEST(A1111Parameters, EverySamplerHasItsA1111Name) {
  struct Expected {
    const char* ebb_name;
    const char* display;
  };
  Expected table[] = {{"euler", "Euler"}, {"euler_a", "Euler a"},   {"heun", "Heun"},
                      {"dpm2", "DPM2"},   {"dpm++2m", "DPM++ 2M"},  {"dpm++2s_a", "DPM++ 2S a"},
                      {"lcm", "LCM"},     {"ddim_trailing", "DDIM"}};
  for (const Expected& e : table)
    EXPECT_EQ(sampler_display_name(parse_sampler(e.ebb_name)), e.display);
  EXPECT_EQ(schedule_display_name(parse_schedule("karras")), "Karras");
  EXPECT_EQ(schedule_display_name(parse_schedule("exponential")), "Exponential");
  EXPECT_EQ(schedule_display_name(parse_schedule("discrete")), "Uniform");
}

TEST(A1111Parameters, SamplersWithTheirOwnTimestepsSayAutomatic) {
  GenerationParams p = cat_params();
  p.sampler = Sampler::lcm;
  EXPECT_NE(a1111_parameters(p).find("Sampler: LCM, Schedule type: Automatic,"), std::string::npos);
  p.sampler = Sampler::ddim_trailing;
  EXPECT_NE(a1111_parameters(p).find("Sampler: DDIM, Schedule type: Automatic,"),
            std::string::npos);
}

}  // namespace
}  // namespace ebb
