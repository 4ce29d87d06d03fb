#pragma once
// Reads the op fixtures written by tools/reference/make_dense_op_fixtures.py. A minimal
// safetensors reader for test data only (the product's parser lives in src/io): the file is
// read whole and its tensors wrapped read-only, zero-copy, the way mapped weights are.
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "tensor/tensor.h"

namespace ebb::test {

struct OpFixture {
  std::string name;
  nlohmann::json params;  // "op" and its parameters
  std::map<std::string, Tensor> tensors;
};

inline OpFixture load_op_fixture(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail("cannot open fixture {}", path);
  auto bytes = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes->data()), std::streamsize(bytes->size()));
  uint64_t header_len = 0;
  if (bytes->size() < 8) fail("fixture {} is truncated", path);
  std::memcpy(&header_len, bytes->data(), 8);
  if (header_len > bytes->size() - 8) fail("fixture {} has a bad header length", path);
  const char* header = reinterpret_cast<const char*>(bytes->data() + 8);
  const auto json = nlohmann::json::parse(header, header + header_len);
  OpFixture f;
  f.name = path.substr(path.find_last_of('/') + 1);
  const std::byte* data = bytes->data() + 8 + header_len;
  const uint64_t data_len = bytes->size() - 8 - header_len;
  for (const auto& [key, entry] : json.items()) {
    if (key == "__metadata__") {
      f.params = nlohmann::json::parse(entry.at("params").get<std::string>());
      continue;
    }
    const auto dtype = dtype_from_safetensors(entry.at("dtype").get<std::string>());
    if (!dtype) fail("fixture {}: tensor {} has an unknown dtype", path, key);
    const uint64_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    if (begin > end || end > data_len)
      fail("fixture {}: tensor {} lies outside the file", path, key);
    f.tensors[key] = Tensor::wrap(data + begin, end - begin, *dtype, entry.at("shape").get<Shape>(),
                                  Device::cpu(), bytes);
  }
  return f;
}

}  // namespace ebb::test
