#pragma once
// Loads the op fixtures written by tools/reference/make_dense_op_fixtures.py: the file is
// mapped read-only and its tensors wrapped zero-copy, the way checkpoint weights are used.
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "tensor/tensor.h"

namespace ebb::test {

struct OpFixture {
  std::string name;
  nlohmann::json params;  // "op" and its parameters
  std::map<std::string, Tensor> tensors;
};

inline OpFixture load_op_fixture(const std::string& path) {
  auto file = std::make_shared<MappedFile>(MappedFile::open(path, MapMode::ReadOnly));
  const SafetensorsHeader header = parse_safetensors(file->bytes(), path);
  OpFixture f;
  f.name = path.substr(path.find_last_of('/') + 1);
  for (const auto& [key, value] : header.metadata)
    if (key == "params") f.params = nlohmann::json::parse(value);
  if (!f.params.contains("op")) fail("fixture {} names no op in its metadata", path);
  for (const TensorInfo& t : header.tensors)
    f.tensors[t.name] = Tensor::wrap(file->bytes().data() + t.offset, t.nbytes, t.dtype, t.shape,
                                     Device::cpu(), file);
  return f;
}

}  // namespace ebb::test
