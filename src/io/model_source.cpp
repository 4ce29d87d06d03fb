#include "io/model_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <variant>

#include "core/error.h"
#include "io/diffusers_names.h"
#include "io/gguf.h"
#include "io/page_cache.h"
#include "io/safetensors.h"

namespace ebb {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kOther = "other";
constexpr std::string_view kDiffusion = "diffusion_model";
constexpr std::string_view kVae = "vae";

// Single-file checkpoints (CompVis, SGM, SD3, ComfyUI) keep each component under a prefix.
struct PrefixRule {
  std::string_view prefix;
  std::string_view component;
};
constexpr std::array<PrefixRule, 9> kPrefixes = {{
    {"model.diffusion_model.", kDiffusion},
    {"first_stage_model.", kVae},
    {"cond_stage_model.transformer.", "clip_l"},
    {"cond_stage_model.model.", "clip_h"},
    {"conditioner.embedders.0.transformer.", "clip_l"},
    {"conditioner.embedders.1.model.", "clip_g"},
    {"text_encoders.clip_l.transformer.", "clip_l"},
    {"text_encoders.clip_g.transformer.", "clip_g"},
    {"text_encoders.t5xxl.transformer.", "t5xxl"},
}};

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// The non-throwing filesystem queries: a path the OS rejects (too long, unreadable) simply
// does not exist as far as layout discovery goes, and the later open names the real problem.
bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}
bool path_is_directory(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

int component_rank(std::string_view name) {
  constexpr std::array<std::string_view, 8> order = {
      "clip_l",       "clip_h",         "clip_g",         "t5xxl",
      "text_encoder", "text_encoder_2", "text_encoder_3", kDiffusion};
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i] == name) return static_cast<int>(i);
  if (name == kVae) return 100;
  if (name == kOther) return 200;
  return 150;
}

FileFormat sniff_format(const MappedFile& file) {
  auto b = file.bytes();
  if (b.size() >= 4 && std::memcmp(b.data(), "GGUF", 4) == 0) return FileFormat::Gguf;
  // A safetensors header (after its 8-byte length) is a JSON object.
  if (b.size() >= 9 && b[8] == std::byte{'{'}) return FileFormat::Safetensors;
  // PyTorch .ckpt/.pt/.bin files are zip archives ("PK") or raw pickles (0x80, protocol 2-5).
  if ((b.size() >= 2 && b[0] == std::byte{'P'} && b[1] == std::byte{'K'}) ||
      (b.size() >= 2 && b[0] == std::byte{0x80} && b[1] >= std::byte{2} && b[1] <= std::byte{5}))
    fail(
        "{}: PyTorch pickle checkpoints are not supported (loading them can run arbitrary "
        "code); convert the file to .safetensors",
        file.path());
  return FileFormat::Safetensors;
}

std::string json_scalar(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>)
          return x;
        else if constexpr (std::is_same_v<T, GgufArray>)
          return fmt::format("[array of {}]", x.items.size());
        else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>)
          return std::to_string(static_cast<int>(x));
        else
          return fmt::format("{}", x);
      },
      v.value);
}

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON at byte {}: {}", path.string(), e.byte, e.what());
  } catch (const nlohmann::json::exception& e) {
    // Well-formed text the parser cannot hold, e.g. a number beyond a double's range.
    fail("{}: unreadable JSON: {}", path.string(), e.what());
  }
}

}  // namespace

// Collects files and tensors; component assignment happens as each file is added.
struct ModelSource::Builder {
  ModelSource& out;
  MapMode mode;
  std::map<std::string, uint32_t, std::less<>> component_ids;
  std::set<std::string> overridden;  // components supplied by a separate file

  uint32_t component_id(std::string_view name) {
    auto it = component_ids.find(name);
    if (it != component_ids.end()) return it->second;
    uint32_t id = static_cast<uint32_t>(out.components_.size());
    out.components_.push_back(Component{std::string(name)});
    component_ids.emplace(std::string(name), id);
    return id;
  }

  uint32_t add_file(const std::string& path, std::vector<TensorInfo>& tensors_out) {
    if (path_is_directory(path))
      fail("{}: is a directory; only -m accepts a diffusers folder (with model_index.json)", path);
    MappedFile mapping = MappedFile::open(path, mode);
    // Read-ahead around the header would fault in megabytes of tensor data (read_ahead_kb is
    // often 4-8 MiB); only the header pages are wanted now.
    advise(mapping, 0, mapping.size(), Hint::Random);
    FileFormat format = sniff_format(mapping);
    SourceFile file{path, format, std::move(mapping), {}};
    if (format == FileFormat::Gguf) {
      GgufFile g = parse_gguf(file.mapping.bytes(), path);
      for (auto& [key, value] : g.metadata)
        if (value.type() != GgufType::ARRAY) file.metadata.emplace_back(key, json_scalar(value));
      tensors_out = std::move(g.tensors);
    } else {
      SafetensorsHeader h = parse_safetensors(file.mapping.bytes(), path);
      file.metadata = std::move(h.metadata);
      tensors_out = std::move(h.tensors);
    }
    advise(file.mapping, 0, file.mapping.size(), Hint::Normal);
    out.files_.push_back(std::move(file));
    return static_cast<uint32_t>(out.files_.size() - 1);
  }

  void add_tensor(TensorInfo info, uint32_t file, std::string_view component,
                  std::string_view prefix) {
    uint32_t cid = component_id(component);
    Component& c = out.components_[cid];
    if (!prefix.empty() &&
        std::find(c.prefixes.begin(), c.prefixes.end(), prefix) == c.prefixes.end())
      c.prefixes.emplace_back(prefix);
    IndexedTensor t;
    t.original_name = info.name;
    info.name = info.name.substr(prefix.size());
    t.info = std::move(info);
    t.file = file;
    t.component = cid;
    std::string key = fmt::format("{}\n{}", component, t.info.name);
    auto [it, inserted] = out.by_key_.emplace(key, static_cast<uint32_t>(out.tensors_.size()));
    if (!inserted) {
      const IndexedTensor& first = out.tensors_[it->second];
      fail("tensor {} of {} appears twice: in {} and in {}", t.info.name, component,
           out.files_[first.file].path, out.files_[file].path);
    }
    c.tensors.push_back(it->second);
    c.bytes += t.info.nbytes;
    out.tensors_.push_back(std::move(t));
  }

  // A whole single-file checkpoint: components by prefix. A file with no known prefix at all
  // is a bare diffusion model (BFL's Flux files, most GGUF conversions).
  void add_checkpoint(const std::string& path) {
    std::vector<TensorInfo> tensors;
    uint32_t file = add_file(path, tensors);
    bool any_prefix = std::any_of(tensors.begin(), tensors.end(), [](const TensorInfo& t) {
      return std::any_of(kPrefixes.begin(), kPrefixes.end(),
                         [&](const PrefixRule& r) { return starts_with(t.name, r.prefix); });
    });
    for (TensorInfo& t : tensors) {
      std::string_view component = any_prefix ? kOther : kDiffusion;
      std::string_view prefix;
      for (const PrefixRule& r : kPrefixes)
        if (starts_with(t.name, r.prefix)) {
          component = r.component;
          prefix = r.prefix;
          break;
        }
      if (overridden.count(std::string(component))) continue;
      add_tensor(std::move(t), file, component, prefix);
    }
  }

  // A file the user named for one component (--vae, --clip_l, ...): every tensor belongs to
  // it, and a single-file prefix, if the file still carries one, is stripped.
  void add_component_file(const std::string& path, std::string_view component) {
    std::vector<TensorInfo> tensors;
    uint32_t file = add_file(path, tensors);
    for (TensorInfo& t : tensors) {
      std::string_view prefix;
      for (const PrefixRule& r : kPrefixes)
        if (starts_with(t.name, r.prefix)) prefix = r.prefix;
      add_tensor(std::move(t), file, component, prefix);
    }
  }

  void add_diffusers_folder(const fs::path& dir);
  void add_diffusers_component(const fs::path& sub, std::string_view component);
  void assign_namings();
  void rename_diffusers_components();
  void detect();
  void sort_components();
};

void ModelSource::Builder::add_diffusers_component(const fs::path& sub,
                                                   std::string_view component) {
  // Sharded weights come with an index; otherwise one file, the full-precision one first.
  for (std::string stem : {"diffusion_pytorch_model", "model"}) {
    for (std::string variant : {"", ".fp16", ".bf16"}) {
      fs::path index = sub / (stem + variant + ".safetensors.index.json");
      if (path_exists(index)) {
        nlohmann::json j = read_json_file(index);
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
          fail("{}: has no \"weight_map\" object", index.string());
        std::vector<std::string> shards;
        std::map<std::string, std::string> expected;  // tensor → shard
        for (auto& [tensor, shard] : j["weight_map"].items()) {
          if (!shard.is_string())
            fail("{}: weight_map entry for tensor {} is not a file name", index.string(), tensor);
          std::string name = shard.get<std::string>();
          if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
            fail("{}: tensor {} names shard \"{}\", which is not a file in {}", index.string(),
                 tensor, name, sub.string());
          if (std::find(shards.begin(), shards.end(), name) == shards.end()) shards.push_back(name);
          expected.emplace(tensor, name);
        }
        for (const std::string& shard : shards) {
          std::vector<TensorInfo> tensors;
          uint32_t file = add_file((sub / shard).string(), tensors);
          for (TensorInfo& t : tensors) {
            auto it = expected.find(t.name);
            if (it == expected.end() || it->second != shard)
              fail("{}: tensor {} is in shard {} but the index {}", index.string(), t.name, shard,
                   it == expected.end() ? "does not list it" : "places it in " + it->second);
            expected.erase(it);
            add_tensor(std::move(t), file, component, "");
          }
        }
        if (!expected.empty())
          fail("{}: tensor {} is listed in shard {} but not found there", index.string(),
               expected.begin()->first, expected.begin()->second);
        return;
      }
      fs::path single = sub / (stem + variant + ".safetensors");
      if (path_exists(single)) {
        add_component_file(single.string(), component);
        return;
      }
    }
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(sub, ec))
    if (entry.path().extension() == ".bin" || entry.path().extension() == ".ckpt")
      fail("{}: PyTorch pickle weights ({}) are not supported; convert them to .safetensors",
           sub.string(), entry.path().filename().string());
  fail(
      "{}: no weights found (expected diffusion_pytorch_model.safetensors, model.safetensors "
      "or a .safetensors.index.json)",
      sub.string());
}

namespace {

// diffusers names text encoders by slot (text_encoder, text_encoder_2, ...); what sits in each
// slot depends on the architecture, so text encoders are named once the diffusion model is known.
std::string_view diffusers_text_encoder_name(Architecture arch, std::string_view slot) {
  const bool first = slot == "text_encoder", second = slot == "text_encoder_2";
  switch (arch) {
    case Architecture::SD1:
      if (first) return "clip_l";
      break;
    case Architecture::SD2:
      if (first) return "clip_h";
      break;
    case Architecture::SDXL:
      if (first) return "clip_l";
      if (second) return "clip_g";
      break;
    case Architecture::SD3:
      if (first) return "clip_l";
      if (second) return "clip_g";
      if (slot == "text_encoder_3") return "t5xxl";
      break;
    case Architecture::Flux:
      if (first) return "clip_l";
      if (second) return "t5xxl";
      break;
    case Architecture::Unknown:
      break;
  }
  return slot;
}

}  // namespace

void ModelSource::Builder::add_diffusers_folder(const fs::path& dir) {
  fs::path index = dir / "model_index.json";
  if (!path_exists(index))
    fail(
        "{}: is a directory without model_index.json; pass a single-file checkpoint or a "
        "diffusers folder",
        dir.string());
  nlohmann::json j = read_json_file(index);
  if (!j.is_object()) fail("{}: is not a JSON object", index.string());
  std::vector<std::string> text_slots;
  for (bool text_pass : {false, true}) {
    if (text_pass) detect();
    for (auto& [key, value] : j.items()) {
      // Components are [library, class] pairs; keys starting with '_' are metadata.
      if (key.empty() || key[0] == '_' || !value.is_array() || value.size() != 2 ||
          value[0].is_null())
        continue;
      std::string_view component;
      if (key == "unet" || key == "transformer")
        component = kDiffusion;
      else if (key == "vae")
        component = kVae;
      else if (starts_with(key, "text_encoder"))
        component = diffusers_text_encoder_name(out.architecture_.arch, key);
      else
        continue;  // scheduler, tokenizer, safety checker: not weights Ebb runs
      const bool is_text = component != kDiffusion && component != kVae;
      if (is_text != text_pass || overridden.count(std::string(component))) continue;
      fs::path sub = dir / key;
      if (key.find('/') != std::string::npos || key == ".." || !path_is_directory(sub))
        fail("{}: lists component \"{}\" but {} is not a folder", index.string(), key,
             sub.string());
      add_diffusers_component(sub, component);
    }
  }
}

// The naming convention of each component, from its first recognisable tensor name.
void ModelSource::Builder::assign_namings() {
  for (Component& c : out.components_) {
    for (uint32_t ti : c.tensors) {
      const std::string& n = out.tensors_[ti].info.name;
      Naming naming = c.name == kDiffusion ? naming_of_diffusion_model(n)
                      : c.name == kVae     ? naming_of_vae(n)
                      : c.name == kOther   ? Naming::Unknown
                                           : naming_of_text_encoder(n);
      if (naming != Naming::Unknown) {
        c.naming = naming;
        break;
      }
    }
  }
}

// A diffusers-named UNet or VAE takes its single-file names here (io/diffusers_names.h), so
// every consumer sees one naming. Flux/SD3 transformers keep theirs: no table maps them.
void ModelSource::Builder::rename_diffusers_components() {
  for (Component& c : out.components_) {
    if (c.naming != Naming::Diffusers || (c.name != kDiffusion && c.name != kVae)) continue;
    std::vector<TensorInfo*> infos;
    for (uint32_t ti : c.tensors) infos.push_back(&out.tensors_[ti].info);
    const bool unet = std::any_of(infos.begin(), infos.end(), [](const TensorInfo* t) {
      return starts_with(t->name, "down_blocks.");
    });
    if (c.name == kDiffusion && !unet) continue;
    for (const TensorInfo* t : infos) out.by_key_.erase(fmt::format("{}\n{}", c.name, t->name));
    rename_diffusers_tensors(c.name == kVae ? DiffusersModel::Vae : DiffusersModel::UNet, infos,
                             out.files_[out.tensors_[c.tensors.front()].file].path);
    for (uint32_t ti : c.tensors) {
      const auto [it, inserted] =
          out.by_key_.emplace(fmt::format("{}\n{}", c.name, out.tensors_[ti].info.name), ti);
      if (!inserted)
        fail("{}: diffusers tensors {} and {} both map to {}",
             out.files_[out.tensors_[ti].file].path, out.tensors_[it->second].original_name,
             out.tensors_[ti].original_name, out.tensors_[ti].info.name);
    }
    c.naming = Naming::Original;
  }
}

void ModelSource::Builder::detect() {
  assign_namings();
  rename_diffusers_components();
  const Component* dm = out.component(kDiffusion);
  if (!dm) {
    out.architecture_ = {Architecture::Unknown, "no diffusion model tensors"};
    return;
  }
  out.architecture_ = detect_architecture(
      [&](std::string_view name) -> const TensorInfo* {
        const IndexedTensor* t = out.find(kDiffusion, name);
        return t ? &t->info : nullptr;
      },
      dm->naming);
}

// Stable order for every consumer: text encoders, diffusion model, VAE, other.
void ModelSource::Builder::sort_components() {
  std::vector<uint32_t> order(out.components_.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return component_rank(out.components_[a].name) < component_rank(out.components_[b].name);
  });
  std::vector<Component> sorted;
  std::vector<uint32_t> new_id(order.size());
  for (uint32_t i = 0; i < order.size(); ++i) {
    new_id[order[i]] = i;
    sorted.push_back(std::move(out.components_[order[i]]));
  }
  out.components_ = std::move(sorted);
  for (IndexedTensor& t : out.tensors_) t.component = new_id[t.component];
}

ModelSource ModelSource::open(const ModelPaths& paths, MapMode mode) {
  ModelSource out;
  Builder b{out, mode, {}, {}};
  const std::array<std::pair<std::string_view, const std::string*>, 5> separate = {{
      {"clip_l", &paths.clip_l},
      {"clip_g", &paths.clip_g},
      {"t5xxl", &paths.t5xxl},
      {kDiffusion, &paths.diffusion_model},
      {kVae, &paths.vae},
  }};
  bool any = !paths.model.empty();
  for (auto& [component, path] : separate) {
    if (path->empty()) continue;
    any = true;
    b.add_component_file(*path, component);
    b.overridden.emplace(component);
  }
  if (!any) fail("no model given: pass -m FILE|FOLDER or --diffusion-model FILE");
  if (!paths.model.empty()) {
    if (path_is_directory(paths.model))
      b.add_diffusers_folder(paths.model);
    else
      b.add_checkpoint(paths.model);
  }
  b.detect();
  b.sort_components();
  return out;
}

const Component* ModelSource::component(std::string_view name) const {
  for (const Component& c : components_)
    if (c.name == name) return &c;
  return nullptr;
}

const IndexedTensor* ModelSource::find(std::string_view component, std::string_view name) const {
  auto it = by_key_.find(fmt::format("{}\n{}", component, name));
  return it == by_key_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::byte> ModelSource::bytes(const IndexedTensor& t) const {
  return files_[t.file].mapping.bytes().subspan(t.info.offset, t.info.nbytes);
}

uint64_t ModelSource::total_bytes() const {
  uint64_t total = 0;
  for (const Component& c : components_) total += c.bytes;
  return total;
}

}  // namespace ebb
