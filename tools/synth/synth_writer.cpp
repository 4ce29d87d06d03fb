#include "synth/synth_writer.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf_writer.h"
#include "io/safetensors_writer.h"
#include "synth/diffusers_configs.h"
#include "synth/synth_fill.h"
#include "tensor/dequantize.h"
#include "tensor/quantize.h"

namespace ebb::synth {
namespace {

namespace fs = std::filesystem;

const std::vector<std::pair<std::string, std::string>> kSafetensorsMetadata = {{"format", "pt"}};

// Small enough that a forward pass through the full-size models stays far from f16's range.
ValueRange value_range(Init init) {
  switch (init) {
    case Init::Weight:
      return {0.0f, 0.04f};
    case Init::Bias:
      return {0.0f, 0.02f};
    case Init::NormWeight:
      return {1.0f, 0.02f};
    case Init::LogitScale:
      return {4.6052f, 0.0f};  // log(100), CLIP's trained value
    case Init::PositionIds:
      break;
  }
  fail("synthetic data: position ids are not random");
}

// FNV-1a: a tensor's random stream is keyed by its single-file name.
uint64_t name_key(const std::string& name) {
  uint64_t hash = 0xCBF29CE484222325ull;
  for (unsigned char c : name) hash = (hash ^ c) * 0x100000001B3ull;
  return hash;
}

// A tensor stored as another type than the float file's (`float_type`): GGUF's F32 vectors and
// the blocks quantize_from_f32 can write hold the float file's values, converted or quantized,
// so a GGUF file and its float original describe the same model.
bool converts(DType dtype, DType float_type) {
  return dtype != float_type && (dtype == DType::F32 || can_quantize(dtype));
}

decltype(TensorToWrite::fill) converted_fill(DType dtype, DType float_type, uint64_t seed,
                                             uint64_t key, uint64_t source_offset,
                                             ValueRange range) {
  const DTypeInfo& info = dtype_info(dtype);
  const uint64_t float_bytes = dtype_info(float_type).block_bytes;
  return [=](std::span<std::byte> dst, uint64_t offset) {
    const uint64_t elems = dst.size() / info.block_bytes * info.block_elems;
    const uint64_t first = offset / info.block_bytes * info.block_elems;
    std::vector<std::byte> drawn(elems * float_bytes);
    synth_fill(float_type, drawn, seed, key, (source_offset + first) * float_bytes, range);
    std::vector<float> values(elems);
    dequantize_to_f32(float_type, drawn.data(), values.data(), elems);
    if (dtype == DType::F32)
      std::memcpy(dst.data(), values.data(), dst.size());
    else
      quantize_from_f32(dtype, values.data(), dst.data(), elems);
  };
}

TensorToWrite make_tensor(const SynthTensor& t, std::string name, DType dtype, DType float_type,
                          std::vector<int64_t> shape, uint64_t seed) {
  TensorToWrite out{std::move(name), dtype, std::move(shape), {}};
  if (t.init == Init::PositionIds) {
    out.dtype = DType::I64;
    out.fill = fill_position_ids;
    return out;
  }
  const uint64_t key = name_key(t.source.empty() ? out.name : t.source);
  const ValueRange range = value_range(t.init);
  const uint64_t elem = dtype_info(dtype).block_bytes;
  if (!t.transposed) {
    if (t.source_offset != 0 && dtype_info(dtype).quantized)
      fail("tensor {}: a slice of another tensor cannot be quantized", out.name);
    if (converts(dtype, float_type)) {
      out.fill = converted_fill(dtype, float_type, seed, key, t.source_offset, range);
      return out;
    }
    const uint64_t base = t.source_offset * elem;
    out.fill = [=](std::span<std::byte> dst, uint64_t offset) {
      synth_fill(dtype, dst, seed, key, base + offset, range);
    };
  } else {
    // Element (r, c) of this [rows, cols] tensor is element (c, r) of its source.
    const uint64_t rows = static_cast<uint64_t>(out.shape.at(0));
    const uint64_t cols = static_cast<uint64_t>(out.shape.at(1));
    out.fill = [=](std::span<std::byte> dst, uint64_t offset) {
      for (uint64_t i = 0; i < dst.size() / elem; ++i) {
        const uint64_t e = offset / elem + i;
        const uint64_t source = (e % cols) * rows + e / cols;
        synth_fill(dtype, dst.subspan(i * elem, elem), seed, key, source * elem, range);
      }
    };
  }
  return out;
}

// What GGUF files converted by stable-diffusion.cpp hold: quantized UNet weight matrices
// where the rows are whole blocks, 1-D tensors in F32, the rest in the float type.
DType gguf_type(const SynthComponent& component, const SynthTensor& t,
                const SynthOptions& options) {
  if (t.shape.size() <= 1) return DType::F32;
  if (options.quant && component.kind == ComponentKind::Unet && t.init == Init::Weight &&
      t.shape.back() % dtype_info(*options.quant).block_elems == 0)
    return *options.quant;
  return options.dtype;
}

std::vector<const SynthComponent*> select(const SynthModel& model,
                                          const std::vector<std::string>& names) {
  std::vector<const SynthComponent*> selected;
  for (const SynthComponent& c : model.components) {
    bool wanted = names.empty();
    for (const std::string& name : names)
      wanted |= name == c.name || (name == "clip" && c.kind == ComponentKind::TextEncoder);
    if (wanted) selected.push_back(&c);
  }
  for (const std::string& name : names) {
    bool known = name == "clip";
    for (const SynthComponent& c : model.components) known |= name == c.name;
    if (!known) {
      std::string valid = "clip";
      for (const SynthComponent& c : model.components)
        if (c.name != "clip") valid += ", " + c.name;
      fail("--components: unknown component '{}' (this architecture has {})", name, valid);
    }
  }
  return selected;
}

void check_options(const SynthOptions& o) {
  if (o.output.empty()) fail("-o: an output path is required");
  if (o.dtype != DType::F16 && o.dtype != DType::BF16 && o.dtype != DType::F32)
    fail("--dtype: {} is not a float type (f16, bf16, f32)", dtype_name(o.dtype));
  if (o.quant && !dtype_info(*o.quant).quantized)
    fail("--quant: {} is not a block-quantized type", dtype_name(*o.quant));
  if (o.quant && o.format != Format::Gguf) fail("--quant needs --format gguf");
  if (o.format == Format::Gguf && o.layout != Layout::Single)
    fail("--format gguf writes one file; it needs --layout single");
  if (o.shard_bytes > 0 && o.layout != Layout::Diffusers)
    fail("--shard-mb applies to --layout diffusers only");
}

WrittenFile written(const fs::path& path, size_t tensors) {
  return {path.string(), tensors, fs::file_size(path)};
}

void write_json(const fs::path& path, const nlohmann::ordered_json& json, bool overwrite) {
  const std::string text = json.dump(2) + "\n";
  AtomicFile file = AtomicFile::create(path.string(), overwrite);
  file.write(std::as_bytes(std::span(text)));
  file.commit();
}

void make_parent_directories(const fs::path& path) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
}

WrittenFile write_single_file(const std::vector<const SynthComponent*>& components,
                              const SynthOptions& o) {
  const bool standalone = components.size() == 1;
  std::vector<TensorToWrite> tensors;
  for (const SynthComponent* c : components) {
    for (const SynthTensor& t : c->tensors) {
      std::string name = standalone ? t.name : c->prefix + t.name;
      if (o.format == Format::Gguf) {
        // ggml tensors have at least one dimension.
        std::vector<int64_t> shape = t.shape.empty() ? std::vector<int64_t>{1} : t.shape;
        tensors.push_back(
            make_tensor(t, std::move(name), gguf_type(*c, t, o), o.dtype, shape, o.seed));
      } else {
        tensors.push_back(make_tensor(t, std::move(name), o.dtype, o.dtype, t.shape, o.seed));
      }
    }
  }
  make_parent_directories(o.output);
  if (o.format == Format::Gguf) {
    GgufMetadata metadata = {{"general.name", GgufValue{fmt::format("ebb-synth {} seed {}",
                                                                    arch_name(o.arch), o.seed)}}};
    write_gguf(o.output, tensors, metadata, 32, o.overwrite);
  } else {
    write_safetensors(o.output, tensors, kSafetensorsMetadata, o.overwrite);
  }
  return written(o.output, tensors.size());
}

// Hugging Face's rule: fill a shard in order until the next tensor would overflow it; a tensor
// larger than the limit gets a shard of its own.
std::vector<std::vector<TensorToWrite>> split_into_shards(std::vector<TensorToWrite> tensors,
                                                          uint64_t limit) {
  std::vector<std::vector<TensorToWrite>> shards(1);
  uint64_t size = 0;
  for (TensorToWrite& t : tensors) {
    const uint64_t nbytes = tensor_nbytes(t);
    if (limit > 0 && !shards.back().empty() && size + nbytes > limit) {
      shards.emplace_back();
      size = 0;
    }
    size += nbytes;
    shards.back().push_back(std::move(t));
  }
  return shards;
}

void write_diffusers_model(const SynthComponent& c, const fs::path& dir, const SynthOptions& o,
                           std::vector<WrittenFile>& files) {
  fs::create_directories(dir);
  write_json(dir / "config.json", c.diffusers_config, o.overwrite);
  std::vector<TensorToWrite> tensors;
  uint64_t total = 0;
  for (const SynthTensor& t : c.diffusers_tensors) {
    tensors.push_back(make_tensor(t, t.name, o.dtype, o.dtype, t.shape, o.seed));
    total += tensor_nbytes(tensors.back());
  }
  auto shards = split_into_shards(std::move(tensors), o.shard_bytes);
  if (shards.size() == 1) {
    const fs::path path = dir / (c.weights_name + ".safetensors");
    write_safetensors(path.string(), shards[0], kSafetensorsMetadata, o.overwrite);
    files.push_back(written(path, shards[0].size()));
    return;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string file =
        fmt::format("{}-{:05d}-of-{:05d}.safetensors", c.weights_name, k + 1, shards.size());
    for (const TensorToWrite& t : shards[k]) weight_map[t.name] = file;
    write_safetensors((dir / file).string(), shards[k], kSafetensorsMetadata, o.overwrite);
    files.push_back(written(dir / file, shards[k].size()));
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}},
                                  {"weight_map", weight_map}};
  write_json(dir / (c.weights_name + ".safetensors.index.json"), index, o.overwrite);
}

std::vector<WrittenFile> write_diffusers(const SynthModel& model,
                                         const std::vector<const SynthComponent*>& components,
                                         const SynthOptions& o) {
  std::vector<WrittenFile> files;
  const fs::path root(o.output);
  if (components.size() == 1) {
    write_diffusers_model(*components[0], root, o, files);
    return files;
  }
  // Tokenizer folders are not written: Ebb ships the CLIP vocabulary itself.
  using nlohmann::json;
  json index = {
      {"_class_name", model.pipeline_class},
      {"_diffusers_version", kDiffusersVersion},
      {"scheduler",
       json::array({"diffusers", model.scheduler_config["_class_name"].get<std::string>()})}};
  for (const SynthComponent* c : components) {
    index[c->diffusers_folder] = json::array({c->diffusers_library, c->diffusers_class});
    if (!c->tokenizer_folder.empty())
      index[c->tokenizer_folder] = json::array({"transformers", "CLIPTokenizer"});
    write_diffusers_model(*c, root / c->diffusers_folder, o, files);
  }
  fs::create_directories(root / "scheduler");
  write_json(root / "scheduler" / "scheduler_config.json", model.scheduler_config, o.overwrite);
  write_json(root / "model_index.json", nlohmann::ordered_json(index), o.overwrite);
  return files;
}

}  // namespace

std::vector<WrittenFile> write_synthetic(const SynthOptions& options) {
  check_options(options);
  const SynthModel model = build_model(options.arch, options.size);
  const std::vector<const SynthComponent*> components = select(model, options.components);
  if (options.layout == Layout::Single) return {write_single_file(components, options)};
  return write_diffusers(model, components, options);
}

}  // namespace ebb::synth
