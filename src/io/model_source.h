#pragma once
// A model source is every file the user named (-m, --diffusion-model, --clip_l, --clip_g,
// --t5xxl, --vae, or a diffusers folder), opened through memory mappings and indexed: each
// tensor's component, name within the component, dtype, shape, file and byte range. Opening
// reads headers only; no tensor byte is touched.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/architecture.h"
#include "io/mapped_file.h"
#include "io/tensor_info.h"

namespace ebb {

// The files a user points Ebb at, with stable-diffusion.cpp's flag names.
struct ModelPaths {
  std::string model;  // -m: a single-file checkpoint or a diffusers folder
  std::string diffusion_model, clip_l, clip_g, t5xxl, vae;
};

enum class FileFormat { Safetensors, Gguf };

struct SourceFile {
  std::string path;
  FileFormat format;
  MappedFile mapping;
  std::vector<std::pair<std::string, std::string>> metadata;  // safetensors __metadata__ or
                                                              // GGUF string/number keys
};

struct IndexedTensor {
  TensorInfo info;  // info.name is the name within the component (prefix stripped)
  std::string original_name;
  uint32_t file = 0;       // index into ModelSource::files()
  uint32_t component = 0;  // index into ModelSource::components()
};

struct Component {
  std::string name;  // clip_l, clip_h, clip_g, t5xxl, diffusion_model, vae, or "other"
  Naming naming = Naming::Unknown;
  std::vector<std::string> prefixes;  // single-file prefixes stripped from its tensors' names
  std::vector<uint32_t> tensors;      // indices into ModelSource::tensors()
  uint64_t bytes = 0;
};

class ModelSource {
 public:
  static ModelSource open(const ModelPaths& paths, MapMode mode = MapMode::ReadOnly);

  const std::vector<SourceFile>& files() const { return files_; }
  const std::vector<IndexedTensor>& tensors() const { return tensors_; }
  const std::vector<Component>& components() const { return components_; }
  const ArchitectureGuess& architecture() const { return architecture_; }

  const Component* component(std::string_view name) const;
  // A tensor by component and name within it, or nullptr.
  const IndexedTensor* find(std::string_view component, std::string_view name) const;
  // The bytes of a tensor as they lie in the mapped file (zero-copy; touching them faults the
  // pages in).
  std::span<const std::byte> bytes(const IndexedTensor& t) const;
  uint64_t total_bytes() const;

 private:
  struct Builder;
  std::vector<SourceFile> files_;
  std::vector<IndexedTensor> tensors_;
  std::vector<Component> components_;
  std::unordered_map<std::string, uint32_t> by_key_;  // "component\0name" → tensor index
  ArchitectureGuess architecture_;
};

}  // namespace ebb
