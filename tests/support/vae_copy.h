#pragma once
// A VAE-only safetensors file holding a checkpoint's VAE tensors ("first_stage_model."), each
// passed through `edit`, which may rename, reshape or refill it (an empty name drops it).
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"

namespace ebb::test {

inline void write_vae_copy(const std::string& checkpoint, const std::string& path,
                           const std::function<void(TensorToWrite&)>& edit) {
  const MappedFile file = MappedFile::open(checkpoint, MapMode::ReadOnly);
  const SafetensorsHeader header = parse_safetensors(file.bytes(), checkpoint);
  std::vector<TensorToWrite> tensors;
  for (const TensorInfo& info : header.tensors) {
    if (!info.name.starts_with("first_stage_model.")) continue;
    const std::byte* data = file.bytes().data() + info.offset;
    TensorToWrite t{info.name, info.dtype, info.shape,
                    [data](std::span<std::byte> dst, uint64_t offset) {
                      std::memcpy(dst.data(), data + offset, dst.size());
                    }};
    edit(t);
    if (!t.name.empty()) tensors.push_back(std::move(t));
  }
  write_safetensors(path, tensors, {}, true);
}

}  // namespace ebb::test
