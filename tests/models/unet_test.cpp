// The UNet on the tiny SD1/SD2/SDXL checkpoints against diffusers' outputs (tests/data/sd,
// tools/reference/make_sd_references.py), with configs built from the manifest's diffusers
// configs, and its errors for checkpoints that do not fit the config.
#include "models/unet.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "io/mapped_file.h"
#include "io/model_source.h"
#include "io/safetensors.h"
#include "support/sd_unet_config.h"
#include "weights/weight_store.h"

namespace ebb {
namespace {

const std::string kDir = std::string(EBB_TEST_DATA_DIR) + "/sd/";

const nlohmann::json& manifest() {
  static const nlohmann::json parsed = [] {
    std::ifstream in(kDir + "manifest.json");
    EXPECT_TRUE(in) << "missing tests/data/sd/manifest.json";
    return in ? nlohmann::json::parse(in) : nlohmann::json::object();
  }();
  return parsed;
}

UNetConfig tiny_config(const std::string& arch) {
  return sd_test::config_from_diffusers(manifest().at("archs").at(arch).at("configs").at("unet"));
}

class References {
 public:
  explicit References(const std::string& arch)
      : arch_(manifest().at("archs").at(arch)),
        file_(
            MappedFile::open(kDir + arch_.at("references").get<std::string>(), MapMode::ReadOnly)),
        header_(parse_safetensors(file_.bytes(), arch + " references")) {
    for (const TensorInfo& info : header_.tensors) by_name_[info.name] = info;
  }

  Tensor tensor(Backend& backend, const std::string& name) const {
    const TensorInfo& info = by_name_.at(name);
    EXPECT_EQ(info.dtype, DType::F32) << name;
    Tensor t = backend.empty(Shape(info.shape.begin(), info.shape.end()));
    backend.write(t, file_.bytes().data() + info.offset, info.nbytes);
    return t;
  }
  std::vector<float> floats(const std::string& name) const {
    const TensorInfo& info = by_name_.at(name);
    std::vector<float> out(info.elements());
    std::memcpy(out.data(), file_.bytes().data() + info.offset, info.nbytes);
    return out;
  }
  double f64_gap(const std::string& name) const {
    return arch_.at("tensors").at(name).at("f64_max_abs_diff");
  }

 private:
  const nlohmann::json& arch_;
  MappedFile file_;
  SafetensorsHeader header_;
  std::map<std::string, TensorInfo> by_name_;
};

std::vector<float> host(Backend& backend, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  backend.read(t, out.data(), t.nbytes());
  return out;
}

struct Model {
  explicit Model(const std::string& arch)
      : source(ModelSource::open({.model = kDir + arch + "-tiny.safetensors"})),
        store(source, ledger, {}) {}
  ModelSource source;
  Ledger ledger;
  WeightStore store;
};

class UNetReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  UNetReferenceTest() : refs_(GetParam()), model_(GetParam()), config_(tiny_config(GetParam())) {}

  UNetCondition condition(const std::string& prompt) {
    UNetCondition c{.context = refs_.tensor(backend_, prompt + ".context")};
    if (config_.adm_in_channels > 0) {
      c.text_embeds = refs_.tensor(backend_, prompt + ".open_clip_g.text_embeds");
      c.time_ids = refs_.tensor(backend_, "unet.time_ids");
    }
    return c;
  }

  std::vector<float> run(float timestep, const std::string& prompt) {
    const Tensor out = unet_forward(backend_, model_.store, config_,
                                    refs_.tensor(backend_, "unet.x"), timestep, condition(prompt));
    EXPECT_EQ(out.shape(), (Shape{1, 4, 8, 8}));
    EXPECT_EQ(model_.store.active_leases(), 0);
    return host(backend_, out);
  }

  // |ours − reference| ≤ 10 × (float32's own gap to float64) + 1e-6, the manifest's rule.
  void expect_matches(const std::vector<float>& ours, const std::string& name) {
    const std::vector<float> ref = refs_.floats(name);
    ASSERT_EQ(ours.size(), ref.size());
    const double tolerance = 10 * refs_.f64_gap(name) + 1e-6;
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i)
      worst = std::max(worst, std::fabs(double{ours[i]} - ref[i]));
    EXPECT_LE(worst, tolerance) << GetParam() << " " << name;
    RecordProperty(name + ".max_abs_diff", fmt::format("{:.3g}", worst));
  }

  CpuBackend backend_{2};
  References refs_;
  Model model_;
  UNetConfig config_;
};

TEST_P(UNetReferenceTest, MatchesDiffusersAtTimesteps500And999) {
  expect_matches(run(500, "prompt0"), "unet.t500.out");
  expect_matches(run(999, "prompt0"), "unet.t999.out");
}

// Random models condition weakly (cond − uncond is ~1e-3 of outputs ~0.76), so a wrong context
// could hide inside the outputs' tolerance: the effect of the condition is compared on its own,
// within the sum of both outputs' float32 rounding (the manifest's rule); that is ~1% of the
// effect, while dropping the text context changes it by 11% (SDXL) to 100% (SD1/SD2).
TEST_P(UNetReferenceTest, ConditionEffectMatchesDiffusers) {
  const std::vector<float> cond = run(500, "prompt0");
  const std::vector<float> uncond = run(500, "prompt1");
  expect_matches(uncond, "unet.t500.uncond.out");
  const std::vector<float> ref_cond = refs_.floats("unet.t500.out");
  const std::vector<float> ref_uncond = refs_.floats("unet.t500.uncond.out");
  double effect = 0, err = 0;
  for (size_t i = 0; i < cond.size(); ++i) {
    const double ref_delta = double{ref_cond[i]} - ref_uncond[i];
    effect = std::max(effect, std::fabs(ref_delta));
    err = std::max(err, std::fabs(double{cond[i]} - uncond[i] - ref_delta));
  }
  const double tolerance =
      10 * (refs_.f64_gap("unet.t500.out") + refs_.f64_gap("unet.t500.uncond.out")) + 1e-6;
  EXPECT_GT(effect, 10 * tolerance) << GetParam() << ": the condition has too little effect";
  EXPECT_LE(err, tolerance) << GetParam() << ": condition effect " << effect;
  RecordProperty("condition_effect", fmt::format("{:.3g}", effect));
  RecordProperty("condition_effect_rel_err", fmt::format("{:.3g}", err / effect));
}

INSTANTIATE_TEST_SUITE_P(TinyCheckpoints, UNetReferenceTest,
                         ::testing::Values("sd1", "sd2", "sdxl"));

// The error unet_forward gives for zero inputs; SDXL's added condition only when `added`.
std::string error_of(const std::string& arch, const UNetConfig& config, int64_t context_dim,
                     bool added = false) {
  Model model(arch);
  CpuBackend backend(1);
  auto zeros = [&](const Shape& shape) {
    Tensor t = backend.empty(shape);
    const std::vector<float> values(static_cast<size_t>(t.numel()), 0.0f);
    backend.write(t, values.data(), t.nbytes());
    return t;
  };
  UNetCondition condition{.context = zeros({1, 77, context_dim})};
  if (added) {
    condition.text_embeds = zeros({1, config.adm_in_channels - 6 * config.time_id_dim});
    condition.time_ids = zeros({1, 6});
  }
  try {
    unet_forward(backend, model.store, config, zeros({1, 4, 8, 8}), 500, condition);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(UNetErrors, MissingTransformerBlockIsNamed) {
  UNetConfig config = tiny_config("sd1");
  config.transformer_depth[0] = 2;
  EXPECT_NE(error_of("sd1", config, 32).find("input_blocks.1.1.transformer_blocks.1."),
            std::string::npos)
      << error_of("sd1", config, 32);
}

TEST(UNetErrors, ExtraTransformerBlockIsNamed) {
  UNetConfig config = tiny_config("sdxl");
  config.transformer_depth[1] = 1;
  const std::string message = error_of("sdxl", config, 64, true);
  EXPECT_NE(message.find("input_blocks.3.1.transformer_blocks.1.norm1.weight"), std::string::npos)
      << message;
}

TEST(UNetErrors, SdxlNeedsItsAddedCondition) {
  EXPECT_NE(error_of("sdxl", tiny_config("sdxl"), 64).find("text_embeds"), std::string::npos);
  UNetConfig config = tiny_config("sdxl");
  config.adm_in_channels = config.time_id_dim = 0;
  EXPECT_NE(error_of("sdxl", config, 64).find("label_emb.0.0.weight"), std::string::npos);
}

TEST(UNetErrors, ContextWidthMismatchNamesTheWeight) {
  UNetConfig config = tiny_config("sd1");
  config.context_dim = 64;
  const std::string message = error_of("sd1", config, 64);
  EXPECT_NE(message.find("input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"),
            std::string::npos)
      << message;
}

TEST(UNetErrors, SdxlConfigOnSd1CheckpointFails) {
  const std::string message = error_of("sd1", tiny_config("sdxl"), 64);
  EXPECT_NE(message.find("label_emb.0.0.weight"), std::string::npos) << message;
}

TEST(UNetConfigs, FullModelsHaveTheReleasedHeads) {
  EXPECT_EQ(UNetConfig::for_architecture(Architecture::SD1).heads,
            (std::vector<int64_t>{8, 8, 8, 8}));
  EXPECT_EQ(UNetConfig::for_architecture(Architecture::SD2).heads,
            (std::vector<int64_t>{5, 10, 20, 20}));
  const UNetConfig xl = UNetConfig::for_architecture(Architecture::SDXL);
  EXPECT_EQ(xl.heads, (std::vector<int64_t>{5, 10, 20}));
  EXPECT_EQ(xl.adm_in_channels, 2816);
  EXPECT_THROW(UNetConfig::for_architecture(Architecture::Flux), Error);
}

}  // namespace
}  // namespace ebb
