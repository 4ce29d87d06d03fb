// ebb-synth: writes synthetic Stable Diffusion checkpoints with the real tensor names and
// shapes and seeded random values, for tests and benchmarks without downloading models.
#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "synth/synth_writer.h"

namespace {

using namespace ebb;
using namespace ebb::synth;

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

DType parse_quant(const std::string& name) {
  std::string upper = name;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string known;
  for (int i = 0; i < kDTypeCount; ++i) {
    const DType type = static_cast<DType>(i);
    if (!dtype_info(type).quantized) continue;
    if (dtype_name(type) == upper) return type;
    known += (known.empty() ? "" : ", ") + std::string(dtype_name(type));
  }
  fail("--quant: unknown type '{}' (one of {})", name, known);
}

constexpr const char* kFooter = R"(
Layouts:
  single     one checkpoint with the original names (model.diffusion_model.*,
             first_stage_model.*, cond_stage_model.* / conditioner.embedders.N.*). With one
             component selected, that component's prefix is dropped, as standalone files have it.
  diffusers  a pipeline folder: model_index.json, scheduler/, unet/, vae/, text_encoder/
             (text_encoder_2/ for sdxl), each with config.json and safetensors weights. With
             one component selected, just that model's folder. Tokenizer folders are not
             written (model_index.json still names them).
GGUF (--format gguf): original names; --quant applies to UNet weight matrices whose rows are
whole blocks; other tensors of 2+ dimensions use --dtype, 1-D ones F32. Q8_0 and Q4_K blocks
quantize the values the --dtype file holds (the same model, quantized); other block types are
random blocks.)";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Writes a synthetic Stable Diffusion checkpoint: real tensor names and shapes, "
      "random values from a seed."};
  app.footer(kFooter);
  SynthOptions options;
  std::string arch, size = "tiny", layout = "single", format = "safetensors", dtype = "f16";
  std::string quant, components;
  double shard_mb = 0;
  app.add_option("arch", arch, "Architecture")
      ->required()
      ->check(CLI::IsMember({"sd1", "sd2", "sdxl"}));
  app.add_option("-o,--output", options.output, "Output file (single) or folder (diffusers)")
      ->required();
  app.add_option("--size", size, "full: the released configs; tiny: same structure, small")
      ->check(CLI::IsMember({"tiny", "full"}))
      ->capture_default_str();
  app.add_option("--layout", layout, "single or diffusers")
      ->check(CLI::IsMember({"single", "diffusers"}))
      ->capture_default_str();
  app.add_option("--format", format, "safetensors or gguf (single layout)")
      ->check(CLI::IsMember({"safetensors", "gguf"}))
      ->capture_default_str();
  app.add_option("--dtype", dtype, "Float type: f16, bf16 or f32")
      ->check(CLI::IsMember({"f16", "bf16", "f32"}))
      ->capture_default_str();
  app.add_option("--quant", quant, "GGUF block type for UNet weights (q8_0, q4_k, ...)");
  app.add_option("--components", components,
                 "Comma-separated subset: unet, vae, clip (sdxl also clip_l, clip_g)");
  app.add_option("--shard-mb", shard_mb,
                 "Diffusers: split weight files into shards of at most this many MB (10^6)")
      ->check(CLI::PositiveNumber);
  app.add_option("-s,--seed", options.seed, "Seed of the random values")->capture_default_str();
  app.add_flag("--overwrite", options.overwrite, "Replace existing files");
  CLI11_PARSE(app, argc, argv);

  try {
    options.arch = *parse_arch(arch);
    options.size = size == "full" ? ModelSize::Full : ModelSize::Tiny;
    options.layout = layout == "diffusers" ? Layout::Diffusers : Layout::Single;
    options.format = format == "gguf" ? Format::Gguf : Format::Safetensors;
    options.dtype = dtype == "f32" ? DType::F32 : dtype == "bf16" ? DType::BF16 : DType::F16;
    if (!quant.empty()) options.quant = parse_quant(quant);
    options.components = split_list(components);
    options.shard_bytes = static_cast<uint64_t>(shard_mb * 1e6);

    const auto start = std::chrono::steady_clock::now();
    const std::vector<WrittenFile> files = write_synthetic(options);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    size_t tensors = 0;
    uint64_t bytes = 0;
    for (const WrittenFile& file : files) {
      fmt::print("wrote {} ({} tensors, {} bytes)\n", file.path, file.tensors, file.bytes);
      tensors += file.tensors;
      bytes += file.bytes;
    }
    fmt::print("{} tensors, {:.3f} GB in {:.1f} s\n", tensors, bytes / 1e9, seconds);
  } catch (const Error& e) {
    fmt::print(stderr, "ebb-synth: {}\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    fmt::print(stderr, "ebb-synth: {}\n", e.what());
    return 1;
  }
  return 0;
}
