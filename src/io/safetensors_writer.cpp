#include "io/safetensors_writer.h"

#include <bit>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/checked_math.h"
#include "core/error.h"

namespace ebb {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");

constexpr const char* kMetadataKey = "__metadata__";

std::string header_json(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::vector<TensorPlacement>& placements,
                        const std::vector<std::pair<std::string, std::string>>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) {
      if (meta.contains(key)) fail("writing {}: duplicate metadata key {}", path, key);
      meta[key] = value;
    }
    header[kMetadataKey] = std::move(meta);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorToWrite& t = tensors[i];
    header[t.name] = {
        {"dtype", dtype_name(t.dtype)},
        {"shape", t.shape},
        {"data_offsets", {placements[i].offset, placements[i].offset + placements[i].nbytes}}};
  }
  try {
    return header.dump();
  } catch (const nlohmann::json::exception&) {
    fail("writing {}: a tensor name or metadata string is not valid UTF-8", path);
  }
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata,
                       bool overwrite) {
  std::unordered_set<std::string> names;
  std::vector<TensorPlacement> placements;
  uint64_t data_bytes = 0;
  for (const TensorToWrite& t : tensors) {
    if (t.name.empty() || t.name == kMetadataKey)
      fail("writing {}: invalid tensor name '{}'", path, t.name);
    if (!names.insert(t.name).second) fail("writing {}: duplicate tensor {}", path, t.name);
    if (!dtype_in_safetensors(t.dtype))
      fail("writing {}: tensor {} has type {}, which safetensors cannot store", path, t.name,
           dtype_name(t.dtype));
    const uint64_t nbytes = tensor_nbytes(t);
    placements.push_back({data_bytes, nbytes});
    auto end = checked_add(data_bytes, nbytes);
    if (!end) fail("writing {}: the tensor data exceed 64-bit sizes", path);
    data_bytes = *end;
  }

  std::string header = header_json(path, tensors, placements, metadata);
  header.append((8 - header.size() % 8) % 8, ' ');
  const uint64_t header_size = header.size();

  AtomicFile file = AtomicFile::create(path, overwrite);
  file.write(std::as_bytes(std::span(&header_size, 1)));
  file.write(std::as_bytes(std::span(header)));
  write_tensor_data(file, tensors, placements, data_bytes);
  file.commit();
}

}  // namespace ebb
