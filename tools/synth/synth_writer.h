#pragma once
// Writes a synthetic model to disk in the layouts users have: one single-file checkpoint
// (.safetensors or .gguf, with the original tensor names) or a diffusers folder.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "synth/synth_model.h"
#include "tensor/dtype.h"

namespace ebb::synth {

enum class Layout { Single, Diffusers };
enum class Format { Safetensors, Gguf };

struct SynthOptions {
  Arch arch = Arch::Sd1;
  ModelSize size = ModelSize::Tiny;
  Layout layout = Layout::Single;
  Format format = Format::Safetensors;
  DType dtype = DType::F16;    // float tensors (GGUF: those of 2+ dimensions left unquantized)
  std::optional<DType> quant;  // GGUF: the UNet's weight matrices whose rows are whole blocks
  // Component names (unet, vae, clip; SDXL also clip_l, clip_g); empty: all. A single-file
  // checkpoint of one component drops that component's prefix, as standalone files do; a
  // diffusers layout of one component is that model's folder, without model_index.json.
  std::vector<std::string> components;
  uint64_t seed = 0;
  std::string output;  // a file (single) or a folder (diffusers)
  bool overwrite = false;
  uint64_t shard_bytes = 0;  // diffusers: split weight files larger than this; 0: never
};

struct WrittenFile {
  std::string path;
  size_t tensors = 0;
  uint64_t bytes = 0;
};

// Writes the model and returns its weight files. Fails on an invalid combination of options
// (naming the options), an existing file without `overwrite`, or an I/O error.
std::vector<WrittenFile> write_synthetic(const SynthOptions& options);

}  // namespace ebb::synth
