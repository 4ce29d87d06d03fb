#include "models/vae.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "nn/leased_weights.h"
#include "nn/vae_attention_block.h"
#include "nn/vae_resnet_block.h"

namespace ebb {
namespace {

constexpr std::string_view kComponent = "vae";
constexpr float kMinLogVariance = -30.0f;
constexpr float kMaxLogVariance = 20.0f;

const TensorInfo* find_tensor(const ModelSource& source, const std::string& name) {
  const IndexedTensor* t = source.find(kComponent, name);
  return t ? &t->info : nullptr;
}

const std::vector<int64_t>& shape_of(const ModelSource& source, const std::string& name) {
  const TensorInfo* info = find_tensor(source, name);
  if (!info) fail("the VAE has no tensor {} (component {})", name, kComponent);
  return info->shape;
}

void expect_shape(const ModelSource& source, const std::string& name,
                  const std::vector<int64_t>& expected) {
  const std::vector<int64_t>& shape = shape_of(source, name);
  if (shape != expected) {
    fail("VAE tensor {} has shape [{}]; expected [{}]", name, fmt::join(shape, ", "),
         fmt::join(expected, ", "));
  }
}

// How many of `pattern` with {} = 0, 1, 2, … exist, counting until the first gap.
int count_indexed(const ModelSource& source, const std::string& pattern) {
  int n = 0;
  while (find_tensor(source, fmt::format(fmt::runtime(pattern), n))) ++n;
  return n;
}

int64_t expected_latent_channels(Architecture arch) {
  switch (arch) {
    case Architecture::SD1:
    case Architecture::SD2:
    case Architecture::SDXL:
      return 4;
    default:
      fail("no CompVis autoencoder configuration for architecture {}", architecture_name(arch));
  }
}

void read_encoder(const ModelSource& source, VaeConfig& config) {
  if (!find_tensor(source, "encoder.conv_in.weight")) return;
  const int levels = count_indexed(source, "encoder.down.{}.block.0.conv1.weight");
  if (levels != config.levels()) {
    fail("the VAE encoder has {} levels (encoder.down.N) but the decoder {} (decoder.up.N)", levels,
         config.levels());
  }
  config.encoder_blocks = count_indexed(source, "encoder.down.0.block.{}.conv1.weight");
  const int64_t z2 = 2 * config.latent_channels;
  expect_shape(source, "encoder.conv_in.weight", {config.channels[0], config.image_channels, 3, 3});
  for (int i = 0; i < levels; ++i) {
    const int64_t in = i == 0 ? config.channels[0] : config.channels[i - 1];
    expect_shape(source, fmt::format("encoder.down.{}.block.0.conv1.weight", i),
                 {config.channels[i], in, 3, 3});
  }
  expect_shape(source, "encoder.conv_out.weight", {z2, config.channels.back(), 3, 3});
  expect_shape(source, "quant_conv.weight", {z2, z2, 1, 1});
}

// ---- compute ----

Tensor conv(Backend& backend, WeightStore& store, const std::string& prefix, const Tensor& x,
            const Conv2dGeometry& geometry) {
  const LeasedWeights w(store, kComponent, prefix);
  return backend.conv2d(x, w.get("weight"), w.get("bias"), geometry);
}

Tensor conv(Backend& backend, WeightStore& store, const std::string& prefix, const Tensor& x,
            int pad) {
  return conv(backend, store, prefix, x, Conv2dGeometry::uniform(1, pad));
}

Tensor resnet(Backend& backend, WeightStore& store, const std::string& prefix, const Tensor& x) {
  const LeasedWeights w(store, kComponent, prefix);
  return vae_resnet_block(backend, w, x);
}

Tensor middle(Backend& backend, WeightStore& store, const std::string& prefix, Tensor x) {
  x = resnet(backend, store, prefix + "block_1.", x);
  {
    const LeasedWeights w(store, kComponent, prefix + "attn_1.");
    x = vae_attention_block(backend, w, x);
  }
  return resnet(backend, store, prefix + "block_2.", x);
}

Tensor output_head(Backend& backend, WeightStore& store, const std::string& part, Tensor x) {
  {
    const LeasedWeights w(store, kComponent, part + "norm_out.");
    x = backend.group_norm(x, kVaeNormGroups, w.get("weight"), w.get("bias"), kVaeNormEps);
  }
  return conv(backend, store, part + "conv_out.", backend.silu(x), 1);
}

void check_input(const Tensor& x, int64_t channels, int64_t multiple, const char* what) {
  if (x.rank() != 4 || x.dim(1) != channels || x.dim(2) < 1 || x.dim(3) < 1 ||
      x.dim(2) % multiple != 0 || x.dim(3) % multiple != 0) {
    fail("VAE {}: input {} must be [B, {}, H, W] with H and W positive multiples of {}", what,
         x.describe(), channels, multiple);
  }
}

// The latent's shape from the moments' [B, 2·C, h, w].
Shape latent_shape(const Tensor& moments) {
  if (moments.rank() != 4 || moments.dim(1) % 2 != 0) {
    fail("VAE moments {} must be [B, 2·C, h, w]", moments.describe());
  }
  return {moments.dim(0), moments.dim(1) / 2, moments.dim(2), moments.dim(3)};
}

}  // namespace

float vae_scaling_factor(Architecture arch) {
  switch (arch) {
    case Architecture::SD1:
    case Architecture::SD2:
      return 0.18215f;
    case Architecture::SDXL:
      return 0.13025f;
    default:
      fail("no VAE scaling factor for architecture {}", architecture_name(arch));
  }
}

VaeConfig vae_config(const ModelSource& source, Architecture arch) {
  const Component* component = source.component(kComponent);
  if (!component) fail("the model files have no VAE (component {})", kComponent);
  if (component->naming != Naming::Original) {
    fail(
        "VAE tensors named the {} way are not supported yet; expected the original "
        "(first_stage_model.) names",
        naming_name(component->naming));
  }
  VaeConfig config;
  const int levels = count_indexed(source, "decoder.up.{}.block.0.conv1.weight");
  if (levels < 1) fail("the VAE has no tensor decoder.up.0.block.0.conv1.weight");
  for (int i = 0; i < levels; ++i) {
    config.channels.push_back(
        shape_of(source, fmt::format("decoder.up.{}.block.0.conv1.weight", i))[0]);
  }
  config.decoder_blocks = count_indexed(source, "decoder.up.0.block.{}.conv1.weight");
  config.latent_channels = expected_latent_channels(arch);
  config.image_channels = shape_of(source, "decoder.conv_out.weight")[0];
  const int64_t z = config.latent_channels;
  expect_shape(source, "post_quant_conv.weight", {z, z, 1, 1});
  expect_shape(source, "decoder.conv_in.weight", {config.channels.back(), z, 3, 3});
  expect_shape(source, "decoder.conv_out.weight",
               {config.image_channels, config.channels[0], 3, 3});
  for (int i = 0; i < levels; ++i) {
    const int64_t in = i == levels - 1 ? config.channels.back() : config.channels[i + 1];
    expect_shape(source, fmt::format("decoder.up.{}.block.0.conv1.weight", i),
                 {config.channels[i], in, 3, 3});
  }
  read_encoder(source, config);
  return config;
}

Tensor vae_decode(Backend& backend, WeightStore& store, const VaeConfig& config, const Tensor& z) {
  check_input(z, config.latent_channels, 1, "decode");
  Tensor x = conv(backend, store, "post_quant_conv.", z, 0);
  x = conv(backend, store, "decoder.conv_in.", x, 1);
  x = middle(backend, store, "decoder.mid.", x);
  for (int level = config.levels() - 1; level >= 0; --level) {
    for (int block = 0; block < config.decoder_blocks; ++block) {
      x = resnet(backend, store, fmt::format("decoder.up.{}.block.{}.", level, block), x);
    }
    if (level != 0) {
      x = conv(backend, store, fmt::format("decoder.up.{}.upsample.conv.", level),
               backend.upsample_nearest2x(x), 1);
    }
  }
  return output_head(backend, store, "decoder.", x);
}

Tensor vae_encode_moments(Backend& backend, WeightStore& store, const VaeConfig& config,
                          const Tensor& image) {
  if (config.encoder_blocks == 0) fail("the VAE files have no encoder (encoder.conv_in.weight)");
  check_input(image, config.image_channels, config.downscale(), "encode");
  // CompVis pads the stride-2 convolution on the bottom and right only.
  const Conv2dGeometry downsample{.stride = 2, .pad_bottom = 1, .pad_right = 1};
  Tensor x = conv(backend, store, "encoder.conv_in.", image, 1);
  for (int level = 0; level < config.levels(); ++level) {
    for (int block = 0; block < config.encoder_blocks; ++block) {
      x = resnet(backend, store, fmt::format("encoder.down.{}.block.{}.", level, block), x);
    }
    if (level != config.levels() - 1) {
      x = conv(backend, store, fmt::format("encoder.down.{}.downsample.conv.", level), x,
               downsample);
    }
  }
  x = middle(backend, store, "encoder.mid.", x);
  x = output_head(backend, store, "encoder.", x);
  return conv(backend, store, "quant_conv.", x, 0);
}

Tensor vae_latent_mean(Backend& backend, const Tensor& moments) {
  return backend.contiguous(moments.narrow(1, 0, latent_shape(moments)[1]));
}

Tensor vae_latent_sample(Backend& backend, const Tensor& moments, const Tensor& noise) {
  const Shape latent = latent_shape(moments);
  if (noise.shape() != latent) {
    fail("VAE sample: noise {} must have the latent mean's shape [{}]", noise.describe(),
         fmt::join(latent, ", "));
  }
  // The backend has no exp op; the latent is small, so the draw runs on the host.
  const int64_t half = latent[1], plane = latent[2] * latent[3];
  const std::vector<float> m = backend.to_floats(moments), e = backend.to_floats(noise);
  std::vector<float> out(e.size());
  for (int64_t b = 0; b < latent[0]; ++b) {
    for (int64_t i = 0; i < half * plane; ++i) {
      const float mu = m[(b * 2 * half) * plane + i];
      const float logvar =
          std::clamp(m[(b * 2 * half + half) * plane + i], kMinLogVariance, kMaxLogVariance);
      out[b * half * plane + i] = mu + std::exp(0.5f * logvar) * e[b * half * plane + i];
    }
  }
  return backend.from_floats(latent, out, "vae sample");
}

}  // namespace ebb
