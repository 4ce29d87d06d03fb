// The autoencoder against diffusers' AutoencoderKL on the tiny checkpoints (tests/data/sd,
// tools/reference/make_sd_references.py): decode, encode, the configuration read from shapes,
// and the errors for files that do not fit.
#include "models/vae.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "support/temp_dir.h"
#include "support/vae_copy.h"

namespace ebb {
namespace {

const std::string kDir = std::string(EBB_TEST_DATA_DIR) + "/sd/";
const std::vector<std::string> kArchs = {"sd1", "sd2", "sdxl"};

const nlohmann::json& manifest() {
  static const nlohmann::json parsed = nlohmann::json::parse(std::ifstream(kDir + "manifest.json"));
  return parsed;
}

Architecture architecture(const std::string& arch) {
  return arch == "sd1" ? Architecture::SD1 : arch == "sd2" ? Architecture::SD2 : Architecture::SDXL;
}

struct Reference {
  Shape shape;
  std::vector<float> values;
  double tolerance;  // the manifest's rule: 10 × f64_max_abs_diff + 1e-6
};

Reference reference(const std::string& arch, const std::string& name) {
  const nlohmann::json& entry = manifest().at("archs").at(arch);
  const MappedFile file =
      MappedFile::open(kDir + entry.at("references").get<std::string>(), MapMode::ReadOnly);
  const SafetensorsHeader header = parse_safetensors(file.bytes(), "references");
  for (const TensorInfo& info : header.tensors) {
    if (info.name != name) continue;
    Reference r{info.shape, std::vector<float>(info.elements()),
                10 * entry.at("tensors").at(name).at("f64_max_abs_diff").get<double>() + 1e-6};
    std::memcpy(r.values.data(), file.bytes().data() + info.offset, info.nbytes);
    return r;
  }
  ADD_FAILURE() << "no reference " << name;
  return {};
}

Tensor to_backend(Backend& backend, const Shape& shape, const std::vector<float>& values) {
  Tensor t = backend.empty(shape);
  backend.write(t, values.data(), values.size() * sizeof(float));
  return t;
}

std::vector<float> to_host(Backend& backend, const Tensor& t) {
  std::vector<float> out(t.numel());
  backend.read(t, out.data(), out.size() * sizeof(float));
  return out;
}

// A checkpoint opened through the weight store, as the pipeline does.
struct Model {
  explicit Model(const std::string& path) : source(ModelSource::open({.model = path})) {}
  ModelSource source;
  Ledger ledger;
  WeightStore store{source, ledger, {}};
};

std::string checkpoint(const std::string& arch) {
  return kDir + manifest().at("archs").at(arch).at("checkpoint").at("file").get<std::string>();
}

void expect_matches(const Reference& ref, Backend& backend, const Tensor& got,
                    const std::string& what) {
  ASSERT_EQ(got.shape(), ref.shape) << what;
  const std::vector<float> values = to_host(backend, got);
  double worst = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    worst = std::max(worst, std::fabs(double(values[i]) - ref.values[i]));
  }
  EXPECT_LE(worst, ref.tolerance) << what;
  fmt::print("{}: max |C++ - diffusers| {:.3g}, tolerance {:.3g}\n", what, worst, ref.tolerance);
}

TEST(Vae, ScalingFactorsAreTheArchitectures) {
  for (const std::string& arch : kArchs) {
    EXPECT_FLOAT_EQ(vae_scaling_factor(architecture(arch)),
                    manifest().at("archs").at(arch).at("vae_scaling_factor").get<float>());
  }
  EXPECT_THROW(vae_scaling_factor(Architecture::Flux), Error);
}

TEST(Vae, ConfigComesFromTheTensorShapes) {
  for (const std::string& arch : kArchs) {
    Model model(checkpoint(arch));
    const VaeConfig config = vae_config(model.source, architecture(arch));
    const nlohmann::json& vae = manifest().at("archs").at(arch).at("configs").at("vae");
    EXPECT_EQ(config.channels, vae.at("block_out_channels").get<std::vector<int64_t>>());
    EXPECT_EQ(config.encoder_blocks, vae.at("layers_per_block").get<int>());
    EXPECT_EQ(config.decoder_blocks, vae.at("layers_per_block").get<int>() + 1);
    EXPECT_EQ(config.latent_channels, vae.at("latent_channels").get<int64_t>());
    EXPECT_EQ(config.image_channels, vae.at("out_channels").get<int64_t>());
    EXPECT_EQ(config.downscale(), manifest().at("archs").at(arch).at("vae_downscale").get<int>());
  }
}

TEST(Vae, DecodeMatchesDiffusers) {
  for (const std::string& arch : kArchs) {
    Model model(checkpoint(arch));
    CpuBackend backend(2);
    const VaeConfig config = vae_config(model.source, architecture(arch));
    const Reference z = reference(arch, "vae.decode.z");
    const Tensor image =
        vae_decode(backend, model.store, config, to_backend(backend, z.shape, z.values));
    expect_matches(reference(arch, "vae.decode.image"), backend, image, arch + ".decode");
    EXPECT_EQ(model.store.active_leases(), 0);
  }
}

TEST(Vae, EncodeMatchesDiffusers) {
  for (const std::string& arch : kArchs) {
    Model model(checkpoint(arch));
    CpuBackend backend(2);
    const VaeConfig config = vae_config(model.source, architecture(arch));
    const Reference image = reference(arch, "vae.encode.image");
    const Tensor moments = vae_encode_moments(backend, model.store, config,
                                              to_backend(backend, image.shape, image.values));
    expect_matches(reference(arch, "vae.encode.moments"), backend, moments, arch + ".encode");
  }
}

TEST(Vae, SampleIsMeanPlusClampedStandardDeviationTimesNoise) {
  CpuBackend backend(1);
  const Shape shape{2, 8, 3, 5};
  std::vector<float> m(shape_numel(shape)), e(m.size() / 2);
  for (size_t i = 0; i < m.size(); ++i) m[i] = std::sin(0.37f * float(i)) * 40.0f;
  for (size_t i = 0; i < e.size(); ++i) e[i] = std::cos(0.11f * float(i));
  const Tensor moments = to_backend(backend, shape, m);
  const Shape latent{2, 4, 3, 5};
  const std::vector<float> mean = to_host(backend, vae_latent_mean(backend, moments));
  const std::vector<float> sample =
      to_host(backend, vae_latent_sample(backend, moments, to_backend(backend, latent, e)));
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < 4 * 15; ++i) {
      const float mu = m[b * 120 + i];
      const float logvar = std::min(20.0f, std::max(-30.0f, m[b * 120 + 60 + i]));
      EXPECT_EQ(mean[b * 60 + i], mu);
      EXPECT_FLOAT_EQ(sample[b * 60 + i], mu + std::exp(logvar / 2) * e[b * 60 + i]);
    }
  }
  EXPECT_THROW(vae_latent_sample(backend, moments, to_backend(backend, {2, 4, 3, 4}, e)), Error);
}

// A VAE-only file holding sd1-tiny's VAE tensors, each passed through `edit`.
std::string write_vae_copy(const test::TempDir& dir,
                           const std::function<void(TensorToWrite&)>& edit) {
  const std::string path = dir / "vae.safetensors";
  test::write_vae_copy(checkpoint("sd1"), path, edit);
  return path;
}

TEST(Vae, AttentionAcceptsMatrixShapedProjections) {
  const test::TempDir dir;
  const std::string path = write_vae_copy(dir, [](TensorToWrite& t) {
    if (t.name.find(".attn_1.") != std::string::npos && t.shape.size() == 4) t.shape.resize(2);
  });
  Model model(path);
  CpuBackend backend(2);
  const VaeConfig config = vae_config(model.source, Architecture::SD1);
  const Reference z = reference("sd1", "vae.decode.z");
  const Tensor image =
      vae_decode(backend, model.store, config, to_backend(backend, z.shape, z.values));
  expect_matches(reference("sd1", "vae.decode.image"), backend, image, "matrix.decode");
}

TEST(Vae, MissingTensorIsNamed) {
  const test::TempDir dir;
  const std::string path = write_vae_copy(dir, [](TensorToWrite& t) {
    if (t.name == "first_stage_model.decoder.up.1.block.1.conv2.bias") t.name.clear();
  });
  Model model(path);
  CpuBackend backend(1);
  const VaeConfig config = vae_config(model.source, Architecture::SD1);
  const Tensor z = to_backend(backend, {1, 4, 2, 2}, std::vector<float>(16, 0.5f));
  try {
    vae_decode(backend, model.store, config, z);
    FAIL() << "decode without a weight succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("decoder.up.1.block.1.conv2.bias"), std::string::npos)
        << e.what();
  }
}

TEST(Vae, MisshapenOrUnsupportedFilesAreRejected) {
  const test::TempDir dir;
  const std::string path = write_vae_copy(dir, [](TensorToWrite& t) {
    if (t.name == "first_stage_model.post_quant_conv.weight") t.shape = {2, 8, 1, 1};
  });
  Model model(path);
  try {
    vae_config(model.source, Architecture::SD1);
    FAIL() << "a misshapen post_quant_conv was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("post_quant_conv.weight"), std::string::npos) << e.what();
  }
  Model tiny(checkpoint("sd1"));
  EXPECT_THROW(vae_config(tiny.source, Architecture::Flux), Error);
  CpuBackend backend(1);
  const VaeConfig config = vae_config(tiny.source, Architecture::SD1);
  const Tensor odd = to_backend(backend, {1, 3, 5, 4}, std::vector<float>(60, 0.0f));
  EXPECT_THROW(vae_encode_moments(backend, tiny.store, config, odd), Error);
}

}  // namespace
}  // namespace ebb
