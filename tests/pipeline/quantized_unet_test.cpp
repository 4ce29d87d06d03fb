// Text to image from GGUF files with a block-quantized UNet (ebb-synth's tiny SD1, the same
// seed as tests/data/sd/sd1-tiny.safetensors): bit-identical to the run from a safetensors file
// holding the dequantized weights as f32, since the CPU backend dequantizes blocks exactly as
// dequantize_to_f32 does and then computes as for f32 weights; and close to the f16 original
// that ebb-synth quantized, Q8_0 closer than Q4_K.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "io/safetensors_writer.h"
#include "pipeline/txt2img.h"
#include "support/sd_tiny_pipeline.h"
#include "support/temp_dir.h"
#include "synth/synth_writer.h"
#include "tensor/dequantize.h"

namespace ebb {
namespace {

using sd_test::kSdDir;
using sd_test::sd_manifest;

const std::string kOriginal = kSdDir + "sd1-tiny.safetensors";

// ebb-synth's UNet of the committed tiny SD1 checkpoint, alone in a GGUF file.
std::string write_quantized_unet(const test::TempDir& dir, DType quant) {
  synth::SynthOptions options;
  options.arch = synth::Arch::Sd1;
  options.size = synth::ModelSize::Tiny;
  options.format = synth::Format::Gguf;
  options.dtype = DType::F16;
  options.quant = quant;
  options.seed = 1;  // as the committed checkpoint (the test checks the manifest says so)
  options.components = {"unet"};
  options.output = dir / std::string("unet-").append(dtype_name(quant)).append(".gguf");
  synth::write_synthetic(options);
  return options.output;
}

// The diffusion model of `gguf`, every tensor dequantized to f32, as a standalone safetensors.
std::string write_dequantized(const std::string& gguf) {
  const ModelSource source = ModelSource::open({.diffusion_model = gguf});
  std::vector<TensorToWrite> tensors;
  for (const IndexedTensor& t : source.tensors()) {
    const std::span<const std::byte> bytes = source.bytes(t);
    const uint64_t elems = static_cast<uint64_t>(shape_numel(t.info.shape));
    tensors.push_back({t.original_name, DType::F32, t.info.shape,
                       [&t, bytes, elems](std::span<std::byte> dst, uint64_t offset) {
                         std::vector<float> all(elems);
                         dequantize_to_f32(t.info.dtype, bytes.data(), all.data(), elems);
                         std::memcpy(dst.data(),
                                     reinterpret_cast<const std::byte*>(all.data()) + offset,
                                     dst.size());
                       }});
  }
  const std::string path = gguf + ".f32.safetensors";
  write_safetensors(path, tensors, {}, false);
  return path;
}

std::vector<float> txt2img(const ModelPaths& paths) {
  const ModelSource source = ModelSource::open(paths);
  Ledger ledger;
  WeightStore store(source, ledger, {});
  CpuBackend backend(1);
  const DiffusionModelSpec spec = sd_test::tiny_spec("sd1", source);
  const TextConditioner text(store, spec.arch, sd_test::tokenizer(),
                             sd_test::tiny_text_options("sd1"));
  Txt2ImgOptions options;
  options.prompt = sd_manifest().at("prompts").at(0);
  options.width = options.height = 16;
  options.steps = 3;
  options.sampler = Sampler::euler_a;
  return backend.to_floats(txt2img_latent(backend, store, spec, text, options));
}

double relative_gap(const std::vector<float>& a, const std::vector<float>& reference) {
  double gap = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    gap = std::max(gap, std::fabs(static_cast<double>(a[i]) - reference[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(reference[i])));
  }
  return gap / scale;
}

TEST(QuantizedUNetTest, GgufRunsEqualTheirDequantizedWeightsAndStayNearTheOriginal) {
  ASSERT_EQ(sd_manifest().at("archs").at("sd1").at("checkpoint").at("command"),
            "ebb-synth sd1 --size tiny --dtype f16 --seed 1 -o sd1-tiny.safetensors");
  test::TempDir dir;
  const std::vector<float> original = txt2img({.model = kOriginal});
  std::vector<double> gaps;
  for (const DType quant : {DType::Q8_0, DType::Q4_K}) {
    SCOPED_TRACE(std::string(dtype_name(quant)));
    const std::string gguf = write_quantized_unet(dir, quant);
    {
      // The file does hold blocks of the type asked for.
      const ModelSource source = ModelSource::open({.diffusion_model = gguf});
      EXPECT_TRUE(std::any_of(source.tensors().begin(), source.tensors().end(),
                              [&](const IndexedTensor& t) { return t.info.dtype == quant; }));
    }
    const std::vector<float> quantized = txt2img({.model = kOriginal, .diffusion_model = gguf});
    const std::vector<float> dequantized =
        txt2img({.model = kOriginal, .diffusion_model = write_dequantized(gguf)});
    EXPECT_EQ(quantized, dequantized);
    gaps.push_back(relative_gap(quantized, original));
    RecordProperty(std::string(dtype_name(quant)) + "_gap", std::to_string(gaps.back()));
  }
  // Q8_0 within the tolerance for final latents; Q4_K, coarser, ten times that.
  EXPECT_GT(gaps[0], 0);
  EXPECT_LT(gaps[0], 1e-3);
  EXPECT_LT(gaps[1], 1e-2);
  EXPECT_LT(gaps[0], gaps[1]);
}

}  // namespace
}  // namespace ebb
