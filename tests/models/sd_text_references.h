#pragma once
// Access to the tiny SD checkpoints and their diffusers references (tests/data/sd) for the
// text-encoder tests: the model opened through the weight store, reference tensors, and the
// manifest's tolerance rule |C++ − ref| ≤ 10 × f64_max_abs_diff + 1e-6.
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

#include "backend/backend.h"
#include "io/mapped_file.h"
#include "io/model_source.h"
#include "io/safetensors.h"
#include "weights/ledger.h"
#include "weights/weight_store.h"

namespace ebb::sd_test {

inline const std::string kSdDir = std::string(EBB_TEST_DATA_DIR) + "/sd/";

inline const nlohmann::json& sd_manifest() {
  static const nlohmann::json parsed = [] {
    std::ifstream in(kSdDir + "manifest.json");
    return nlohmann::json::parse(in);
  }();
  return parsed;
}

inline const nlohmann::json& sd_arch(const std::string& arch) {
  return sd_manifest().at("archs").at(arch);
}

inline int64_t sd_encoder_heads(const std::string& arch, const std::string& encoder) {
  return sd_arch(arch).at("configs").at(encoder).at("num_attention_heads").get<int64_t>();
}

class SdReferences {
 public:
  explicit SdReferences(const std::string& arch)
      : SdReferences(sd_arch(arch).at("references").get<std::string>(),
                     sd_arch(arch).at("tensors")) {}
  // A references file of kSdDir and its manifest entries (with f64_max_abs_diff) by name.
  SdReferences(const std::string& file, const nlohmann::json& entries)
      : name_(file), entries_(entries), file_(MappedFile::open(kSdDir + file, MapMode::ReadOnly)) {
    for (const TensorInfo& info : parse_safetensors(file_.bytes(), "references").tensors)
      by_name_[info.name] = info;
  }

  template <typename T>
  std::vector<T> values(const std::string& name) const {
    const TensorInfo& info = by_name_.at(name);
    std::vector<T> out(info.nbytes / sizeof(T));
    std::memcpy(out.data(), file_.bytes().data() + info.offset, info.nbytes);
    return out;
  }
  std::vector<int32_t> ids(const std::string& name) const { return values<int32_t>(name); }

  // Expects `actual` within the manifest's tolerance of reference `name`; returns the largest
  // difference found.
  double expect_close(const std::string& name, const std::vector<float>& actual) const {
    const std::vector<float> expected = values<float>(name);
    const double f64_gap = entries_.at(name).at("f64_max_abs_diff").get<double>();
    const double tolerance = 10 * f64_gap + 1e-6;
    EXPECT_EQ(actual.size(), expected.size()) << name_ << " " << name;
    double worst = 0;
    for (size_t i = 0; i < std::min(actual.size(), expected.size()); ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(actual[i]) - expected[i]));
    EXPECT_LE(worst, tolerance) << name_ << " " << name;
    return worst;
  }

 private:
  std::string name_;
  nlohmann::json entries_;
  MappedFile file_;
  std::map<std::string, TensorInfo> by_name_;
};

// The tiny checkpoint of `arch`, opened as the application opens it.
struct SdCheckpoint {
  explicit SdCheckpoint(const std::string& arch)
      : source(ModelSource::open(
            {.model = kSdDir + sd_arch(arch).at("checkpoint").at("file").get<std::string>()})),
        store(source, ledger, {}) {}
  ModelSource source;
  Ledger ledger;
  WeightStore store;
};

}  // namespace ebb::sd_test
