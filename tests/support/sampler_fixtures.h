#pragma once
// The sampler and schedule goldens from tools/reference/make_sampler_fixtures.py (k-diffusion
// and diffusers), parsed once per test binary.
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace ebb::test {

inline const nlohmann::json& sampler_fixtures() {
  static const nlohmann::json json = [] {
    std::ifstream in(std::string(EBB_TEST_DATA_DIR) + "/samplers/sampler_fixtures.json");
    if (!in) throw std::runtime_error("missing tests/data/samplers/sampler_fixtures.json");
    return nlohmann::json::parse(in);
  }();
  return json;
}

}  // namespace ebb::test
