// The SD reference fixtures (tests/data/sd, written by tools/reference/make_sd_references.py)
// are present and say what their manifest says: the model tests rely on that.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "pipeline/schedule.h"
#include "pipeline/torch_rng.h"

namespace ebb {
namespace {

const std::string kDir = std::string(EBB_TEST_DATA_DIR) + "/sd/";
constexpr int32_t kStartOfText = 49406;
constexpr int32_t kEndOfText = 49407;

const nlohmann::json& manifest() {
  static const nlohmann::json parsed = [] {
    std::ifstream in(kDir + "manifest.json");
    EXPECT_TRUE(in) << "missing tests/data/sd/manifest.json";
    return in ? nlohmann::json::parse(in) : nlohmann::json::object();
  }();
  return parsed;
}

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& name)
      : file_(MappedFile::open(kDir + name, MapMode::ReadOnly)),
        header_(parse_safetensors(file_.bytes(), name)) {
    for (const TensorInfo& info : header_.tensors) by_name_[info.name] = info;
  }

  uint64_t size() const { return file_.size(); }
  const std::map<std::string, TensorInfo>& tensors() const { return by_name_; }

  const TensorInfo& info(const std::string& name) const {
    const auto found = by_name_.find(name);
    if (found == by_name_.end()) ADD_FAILURE() << "no tensor " << name;
    return found == by_name_.end() ? empty_ : found->second;
  }

  template <typename T>
  std::vector<T> values(const std::string& name, DType dtype) const {
    const TensorInfo& tensor = info(name);
    if (tensor.dtype != dtype || tensor.nbytes != tensor.elements() * sizeof(T)) {
      ADD_FAILURE() << name << " is not " << dtype_name(dtype);
      return {};
    }
    std::vector<T> out(tensor.elements());
    std::memcpy(out.data(), file_.bytes().data() + tensor.offset, tensor.nbytes);
    return out;
  }
  std::vector<float> floats(const std::string& name) const {
    return values<float>(name, DType::F32);
  }
  std::vector<int32_t> ints(const std::string& name) const {
    return values<int32_t>(name, DType::I32);
  }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
  std::map<std::string, TensorInfo> by_name_;
  TensorInfo empty_;
};

std::vector<std::string> archs() {
  std::vector<std::string> names;
  for (const auto& [arch, _] : manifest().at("archs").items()) names.push_back(arch);
  return names;
}

const nlohmann::json& arch_entry(const std::string& arch) {
  return manifest().at("archs").at(arch);
}

SafetensorsFile references(const std::string& arch) {
  return SafetensorsFile(arch_entry(arch).at("references").get<std::string>());
}

TEST(SdReferenceFixtures, ManifestCoversTheThreeArchitectures) {
  EXPECT_EQ(archs(), (std::vector<std::string>{"sd1", "sd2", "sdxl"}));
  EXPECT_EQ(manifest().at("txt2img").at("runs").size(), 10u);
}

TEST(SdReferenceFixtures, CheckpointsAreTheRecordedF16Files) {
  for (const std::string& arch : archs()) {
    const nlohmann::json& recorded = arch_entry(arch).at("checkpoint");
    const SafetensorsFile checkpoint(recorded.at("file").get<std::string>());
    EXPECT_EQ(checkpoint.size(), recorded.at("bytes").get<uint64_t>()) << arch;
    EXPECT_EQ(checkpoint.tensors().size(), recorded.at("tensors").get<size_t>()) << arch;
    for (const auto& [name, info] : checkpoint.tensors()) {
      const DType expected = name.ends_with("position_ids") ? DType::I64 : DType::F16;
      EXPECT_EQ(info.dtype, expected) << arch << " " << name;
    }
    for (const auto& unused : arch_entry(arch).at("unused_checkpoint_tensors")) {
      EXPECT_EQ(checkpoint.tensors().count(unused.get<std::string>()), 1u) << unused;
    }
  }
}

TEST(SdReferenceFixtures, ReferencesHoldExactlyTheManifestTensors) {
  for (const std::string& arch : archs()) {
    const SafetensorsFile file = references(arch);
    const nlohmann::json& listed = arch_entry(arch).at("tensors");
    EXPECT_EQ(file.tensors().size(), listed.size()) << arch;
    for (const auto& [name, entry] : listed.items()) {
      const TensorInfo& info = file.info(name);
      EXPECT_EQ(dtype_name(info.dtype), entry.at("dtype").get<std::string>())
          << arch << " " << name;
      EXPECT_EQ(info.shape, entry.at("shape").get<std::vector<int64_t>>()) << arch << " " << name;
      EXPECT_FALSE(entry.at("meaning").get<std::string>().empty()) << name;
      if (info.dtype != DType::F32) continue;
      const std::vector<float> values = file.floats(name);
      float max_abs = 0;
      for (float v : values) {
        ASSERT_TRUE(std::isfinite(v)) << arch << " " << name;
        max_abs = std::max(max_abs, std::fabs(v));
      }
      EXPECT_NEAR(max_abs, entry.at("max_abs").get<double>(), 0.01 * max_abs)
          << arch << " " << name;
      EXPECT_LE(entry.at("f64_max_abs_diff").get<double>(), 1e-4 * std::max(1.0f, max_abs)) << name;
    }
  }
}

// Context = one encoder output, or several concatenated on the channels.
TEST(SdReferenceFixtures, ContextIsTheManifestsRecipe) {
  for (const std::string& arch : archs()) {
    const SafetensorsFile file = references(arch);
    const nlohmann::json& recipe = arch_entry(arch).at("context");
    const auto sources = recipe.at("sources").get<std::vector<std::string>>();
    EXPECT_EQ(recipe.at("op"), sources.size() == 1 ? "copy" : "concat_channels") << arch;
    for (size_t prompt = 0; prompt < manifest().at("prompts").size(); ++prompt) {
      const std::string p = "prompt" + std::to_string(prompt) + ".";
      const std::vector<float> context = file.floats(p + "context");
      const std::vector<int64_t>& shape = file.info(p + "context").shape;
      ASSERT_EQ(shape.size(), 3u);
      const int64_t tokens = shape[1];
      const int64_t width = shape[2];
      EXPECT_EQ(width,
                arch_entry(arch).at("configs").at("unet").at("cross_attention_dim").get<int64_t>());
      int64_t channel = 0;
      for (const std::string& source : sources) {
        const std::vector<float> part = file.floats(p + source);
        const int64_t part_width = file.info(p + source).shape.back();
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t c = 0; c < part_width; ++c) {
            ASSERT_EQ(context[t * width + channel + c], part[t * part_width + c])
                << arch << " " << p << source << " token " << t;
          }
        }
        channel += part_width;
      }
      EXPECT_EQ(channel, width) << arch;
    }
  }
}

TEST(SdReferenceFixtures, TokenWindowsAreStartTokensEndAndPadding) {
  for (const std::string& arch : archs()) {
    const SafetensorsFile file = references(arch);
    for (size_t prompt = 0; prompt < manifest().at("prompts").size(); ++prompt) {
      std::set<std::vector<int32_t>> unpadded;
      for (const auto& [encoder, entry] : arch_entry(arch).at("text_encoders").items()) {
        const std::string name = "prompt" + std::to_string(prompt) + "." + encoder + ".ids";
        const std::vector<int32_t> ids = file.ints(name);
        ASSERT_EQ(ids.size(), 77u) << name;
        EXPECT_EQ(ids[0], kStartOfText) << name;
        size_t end = 1;
        while (end < ids.size() && ids[end] != kEndOfText) ++end;
        ASSERT_LT(end, ids.size()) << name << ": no <|endoftext|>";
        for (size_t i = end + 1; i < ids.size(); ++i) {
          EXPECT_EQ(ids[i], entry.at("pad_id").get<int32_t>()) << name << " position " << i;
        }
        unpadded.insert(std::vector<int32_t>(ids.begin(), ids.begin() + end + 1));
      }
      EXPECT_EQ(unpadded.size(), 1u) << arch << ": encoders see different tokens";
    }
  }
}

std::vector<float> torch_noise(uint64_t seed, size_t count) {
  TorchCpuGenerator generator(seed);
  std::vector<float> noise(count);
  generator.randn(noise);
  return noise;
}

// The C++ pipeline tests start from the seed, not from the stored noise: the two must agree.
TEST(SdReferenceFixtures, Txt2imgRunsStartFromTheSeedsTorchNoise) {
  const nlohmann::json& txt2img = manifest().at("txt2img");
  const int steps = txt2img.at("steps").get<int>();
  const DiscreteSchedule schedule = DiscreteSchedule::scaled_linear();
  for (const std::string& arch : archs()) {
    const SafetensorsFile file = references(arch);
    const std::vector<float> noise = file.floats("txt2img.noise");
    EXPECT_EQ(noise, torch_noise(txt2img.at("seed").get<uint64_t>(), noise.size())) << arch;
    for (const auto& run : txt2img.at("runs")) {
      const std::string name = "txt2img." + run.at("name").get<std::string>();
      const std::string sampler = run.at("sampler").get<std::string>();
      const std::vector<float> x = file.floats(name + ".x");
      ASSERT_EQ(x.size(), static_cast<size_t>(steps) * noise.size()) << name;
      if (sampler == "lcm" || sampler == "ddim_trailing") {
        const std::vector<int> expected =
            sampler == "lcm" ? lcm_timesteps(1000, steps) : ddim_trailing_timesteps(1000, steps);
        const std::vector<int32_t> timesteps = file.ints(name + ".timesteps");
        EXPECT_EQ(std::vector<int>(timesteps.begin(), timesteps.end()), expected) << name;
        for (size_t i = 0; i < noise.size(); ++i) ASSERT_EQ(x[i], noise[i]) << name;
        continue;
      }
      const std::vector<float> sigmas = file.floats(name + ".sigmas");
      const std::vector<float> expected =
          make_sigmas(parse_schedule(run.at("schedule").get<std::string>()), schedule, steps);
      ASSERT_EQ(sigmas.size(), expected.size()) << name;
      for (size_t i = 0; i < sigmas.size(); ++i) {
        EXPECT_NEAR(sigmas[i], expected[i], 1e-6 * expected[i]) << name << " sigma " << i;
      }
      for (size_t i = 0; i < noise.size(); ++i) ASSERT_EQ(x[i], noise[i] * sigmas[0]) << name;
    }
  }
}

}  // namespace
}  // namespace ebb
