// Fuzzes the model-source loader: the first input byte picks what the rest of the input
// becomes — a whole model file, a diffusers model_index.json, or a shard index — inside a
// scratch folder whose other files are valid.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "io/model_source.h"
#include "io/safetensors_writer.h"

namespace fs = std::filesystem;

namespace {

fs::path g_dir;

ebb::TensorToWrite tiny(const std::string& name) {
  return {name, ebb::DType::F32, {2, 2}, [](std::span<std::byte> dst, uint64_t) {
            std::memset(dst.data(), 0, dst.size());
          }};
}

void write_bytes(const fs::path& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  g_dir = fs::path(tmp ? tmp : "/tmp") / ("ebb-model-source-fuzz-" + std::to_string(getpid()));
  fs::create_directories(g_dir / "unet");
  fs::create_directories(g_dir / "vae");
  ebb::write_safetensors((g_dir / "unet/a.safetensors").string(),
                         {tiny("down_blocks.0.attentions.0.proj_in.weight")}, {}, true);
  ebb::write_safetensors((g_dir / "unet/b.safetensors").string(), {tiny("conv_in.weight")}, {},
                         true);
  ebb::write_safetensors((g_dir / "vae/diffusion_pytorch_model.safetensors").string(),
                         {tiny("encoder.conv_in.weight")}, {}, true);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  ++data;
  --size;
  ebb::ModelPaths paths;
  if (mode == 0) {
    write_bytes(g_dir / "single.safetensors", data, size);
    paths.model = (g_dir / "single.safetensors").string();
  } else if (mode == 1) {
    write_bytes(g_dir / "model_index.json", data, size);
    fs::remove(g_dir / "unet/diffusion_pytorch_model.safetensors.index.json");
    paths.model = g_dir.string();
  } else {
    const char* index = R"({"unet": ["diffusers", "UNet2DConditionModel"], "vae": ["d", "V"]})";
    write_bytes(g_dir / "model_index.json", reinterpret_cast<const uint8_t*>(index),
                std::strlen(index));
    write_bytes(g_dir / "unet/diffusion_pytorch_model.safetensors.index.json", data, size);
    paths.model = g_dir.string();
  }
  try {
    ebb::ModelSource::open(paths);
  } catch (const ebb::Error&) {
  }
  return 0;
}
