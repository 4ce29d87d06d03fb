#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/model_flags.h"
#include "io/model_source.h"

namespace ebb {
namespace {

struct InspectArgs {
  std::vector<std::string> paths;
  ModelPaths components;
  bool tensors = false;
  bool json = false;
};

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", b / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f} MiB", b / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", b / double(1ull << 10));
  return fmt::format("{} B", b);
}

std::map<std::string, size_t> dtype_mix(const ModelSource& src, const Component& c) {
  std::map<std::string, size_t> mix;
  for (uint32_t ti : c.tensors) ++mix[std::string(dtype_name(src.tensors()[ti].info.dtype))];
  return mix;
}

nlohmann::json to_json(const ModelSource& src, bool with_tensors) {
  nlohmann::json j;
  j["architecture"] = architecture_name(src.architecture().arch);
  j["architecture_reason"] = src.architecture().reason;
  for (const SourceFile& f : src.files())
    j["files"].push_back({{"path", f.path},
                          {"format", f.format == FileFormat::Gguf ? "gguf" : "safetensors"},
                          {"bytes", f.mapping.size()}});
  for (const Component& c : src.components()) {
    nlohmann::json jc = {{"name", c.name},         {"naming", naming_name(c.naming)},
                         {"prefixes", c.prefixes}, {"tensors", c.tensors.size()},
                         {"bytes", c.bytes},       {"dtypes", dtype_mix(src, c)}};
    j["components"].push_back(jc);
  }
  j["total_bytes"] = src.total_bytes();
  j["total_tensors"] = src.tensors().size();
  if (with_tensors)
    for (const IndexedTensor& t : src.tensors())
      j["tensors"].push_back({{"component", src.components()[t.component].name},
                              {"name", t.info.name},
                              {"original_name", t.original_name},
                              {"dtype", dtype_name(t.info.dtype)},
                              {"shape", t.info.shape},
                              {"file", src.files()[t.file].path},
                              {"offset", t.info.offset},
                              {"bytes", t.info.nbytes}});
  return j;
}

void print_text(const ModelSource& src, bool with_tensors) {
  for (const SourceFile& f : src.files())
    fmt::print("file          {} ({}, {})\n", f.path,
               f.format == FileFormat::Gguf ? "gguf" : "safetensors",
               human_bytes(f.mapping.size()));
  fmt::print("architecture  {} ({})\n", architecture_name(src.architecture().arch),
             src.architecture().reason);
  fmt::print("components\n");
  for (const Component& c : src.components()) {
    std::vector<std::string> mix;
    for (const auto& [dtype, n] : dtype_mix(src, c)) mix.push_back(fmt::format("{} {}", dtype, n));
    fmt::print("  {:<16} {:>6} tensors {:>11}  naming {:<9}  {}\n", c.name, c.tensors.size(),
               human_bytes(c.bytes), naming_name(c.naming), fmt::join(mix, ", "));
  }
  fmt::print("total         {} tensors, {}\n", src.tensors().size(),
             human_bytes(src.total_bytes()));
  if (!with_tensors) return;
  fmt::print("tensors\n");
  for (const IndexedTensor& t : src.tensors())
    fmt::print("  {:<16} {:<70} {:<7} [{}] @{} +{}\n", src.components()[t.component].name,
               t.info.name, dtype_name(t.info.dtype), fmt::join(t.info.shape, ", "), t.info.offset,
               t.info.nbytes);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand(
      "inspect", "Show what a model is: architecture, components, tensors (reads headers only)");
  cmd->add_option("paths", args->paths,
                  "Model files or diffusers folders (each inspected on its own, or, with the "
                  "component flags, the first one combined with them)");
  add_model_flags(*cmd, args->components);
  cmd->add_flag("--tensors", args->tensors, "List every tensor");
  cmd->add_flag("--json", args->json, "Print JSON for machines");
  cmd->callback([args] {
    std::vector<ModelPaths> sources;
    ModelPaths with_flags = args->components;
    bool flags_given = !with_flags.diffusion_model.empty() || !with_flags.clip_l.empty() ||
                       !with_flags.clip_g.empty() || !with_flags.t5xxl.empty() ||
                       !with_flags.vae.empty();
    if (flags_given) {
      if (args->paths.size() > 1)
        throw CLI::ValidationError("inspect",
                                   "with component flags, give at most one -m style path");
      if (!args->paths.empty()) with_flags.model = args->paths[0];
      sources.push_back(with_flags);
    } else {
      if (args->paths.empty())
        throw CLI::ValidationError("inspect", "give a model file or folder to inspect");
      for (const auto& p : args->paths) sources.push_back(ModelPaths{p});
    }
    nlohmann::json all = nlohmann::json::array();
    for (size_t i = 0; i < sources.size(); ++i) {
      ModelSource src = ModelSource::open(sources[i]);
      if (args->json) {
        all.push_back(to_json(src, args->tensors));
      } else {
        if (i > 0) fmt::print("\n");
        print_text(src, args->tensors);
      }
    }
    if (args->json) fmt::print("{}\n", (all.size() == 1 ? all[0] : all).dump(2));
  });
}

}  // namespace ebb
