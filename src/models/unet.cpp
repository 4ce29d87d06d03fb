#include "models/unet.h"

#include <fmt/format.h>

#include <string>

#include "core/error.h"
#include "nn/leased_weights.h"
#include "nn/resnet_block.h"
#include "nn/spatial_transformer.h"
#include "nn/weight_shape_check.h"

namespace ebb {
namespace {

const std::string kComponent = "diffusion_model";
constexpr int64_t kGroups = 32;
constexpr float kNormEps = 1e-5f;
constexpr int64_t kTimeIds = 6;

// Heads per level for a fixed head width (SD 2.x and XL use 64 channels per head).
std::vector<int64_t> heads_of_width(const UNetConfig& c, int64_t head_dim) {
  std::vector<int64_t> heads;
  for (int level = 0; level < c.levels(); ++level) heads.push_back(c.channels(level) / head_dim);
  return heads;
}

void check_config(const UNetConfig& c) {
  const size_t levels = c.channel_mult.size();
  if (levels == 0 || c.transformer_depth.size() != levels || c.heads.size() != levels) {
    fail("UNet config: channel_mult, transformer_depth and heads need one entry per level");
  }
  if (c.num_res_blocks < 1 || c.model_channels % kGroups != 0) {
    fail("UNet config: need res blocks and channels divisible by {} groups", kGroups);
  }
  const bool added = c.adm_in_channels > 0 || c.time_id_dim > 0;
  if (added && (c.time_id_dim <= 0 || c.adm_in_channels <= kTimeIds * c.time_id_dim)) {
    fail("UNet config: adm_in_channels {} must exceed 6 x time_id_dim {}", c.adm_in_channels,
         c.time_id_dim);
  }
}

void check_inputs(const UNetConfig& c, const Tensor& x, const UNetCondition& cond) {
  const int64_t factor = int64_t{1} << (c.levels() - 1);
  if (x.rank() != 4 || x.dim(1) != c.in_channels || x.dim(2) % factor || x.dim(3) % factor) {
    fail("UNet input {} must be [B, {}, h, w] with h, w multiples of {}", x.describe(),
         c.in_channels, factor);
  }
  const Tensor& ctx = cond.context;
  if (ctx.rank() != 3 || ctx.dim(0) != x.dim(0) || ctx.dim(2) != c.context_dim) {
    fail("UNet context {} must be [{}, tokens, {}]", ctx.describe(), x.dim(0), c.context_dim);
  }
  if (c.adm_in_channels == 0) {
    if (cond.text_embeds.defined() || cond.time_ids.defined()) {
      fail("this UNet takes no added condition (text_embeds, time_ids)");
    }
    return;
  }
  const int64_t pooled = c.adm_in_channels - kTimeIds * c.time_id_dim;
  const Shape want_embeds{x.dim(0), pooled}, want_ids{x.dim(0), kTimeIds};
  if (cond.text_embeds.shape() != want_embeds || cond.time_ids.shape() != want_ids) {
    fail("SDXL UNet added condition: text_embeds {} and time_ids {} must be {} and {}",
         cond.text_embeds.describe(), cond.time_ids.describe(), shape_str(want_embeds),
         shape_str(want_ids));
  }
}

class UNetRun {
 public:
  UNetRun(Backend& backend, WeightStore& store, const UNetConfig& config, const Tensor& context)
      : backend_(backend), store_(store), config_(config), context_(context) {}

  // SiLU of the time embedding (plus SDXL's label embedding): every ResBlock's emb_layers.0.
  void embed_time(int64_t batch, float timestep, const UNetCondition& cond) {
    // Timesteps stay f32 on every backend: f16 would round fractional sampler timesteps.
    Tensor t = backend_.empty({batch}, DType::F32, MemoryTag::Activations, "timesteps");
    const std::vector<float> steps(static_cast<size_t>(batch), timestep);
    backend_.write_floats(t, steps);
    const int64_t mc = config_.model_channels, ted = config_.time_embed_dim();
    Tensor emb =
        mlp("time_embed.", backend_.timestep_embedding(t, mc, cpu::sd_timestep_params()), mc, ted);
    if (config_.adm_in_channels > 0) {
      const Tensor ids =
          backend_.timestep_embedding(backend_.contiguous(cond.time_ids).reshape({-1}),
                                      config_.time_id_dim, cpu::sd_timestep_params());
      const Tensor y = backend_.concat(
          {cond.text_embeds, ids.reshape({batch, kTimeIds * config_.time_id_dim})}, 1);
      emb = backend_.add(emb, mlp("label_emb.0.", y, config_.adm_in_channels, ted));
    }
    emb_silu_ = backend_.silu(emb);
  }

  Tensor resnet(const std::string& prefix, const Tensor& x, int64_t out_channels) {
    const LeasedWeights weights(store_, kComponent, prefix);
    return resnet_block(backend_, weights, x, emb_silu_, out_channels);
  }

  Tensor attention(const std::string& prefix, const Tensor& x, int64_t heads, int depth) {
    return spatial_transformer(backend_, store_, kComponent, prefix, x, context_, {heads, depth});
  }

  Tensor conv(const std::string& prefix, const Tensor& x, int64_t out_channels, int stride) {
    const LeasedWeights weights(store_, kComponent, prefix);
    return backend_.conv2d(x, get_with_shape(weights, "weight", {out_channels, x.dim(1), 3, 3}),
                           weights.get("bias"), stride, 1);
  }

  Tensor output(const Tensor& x) {
    const LeasedWeights weights(store_, kComponent, "out.");
    const Tensor h = backend_.silu(
        backend_.group_norm(x, kGroups, weights.get("0.weight"), weights.get("0.bias"), kNormEps));
    return backend_.conv2d(
        h, get_with_shape(weights, "2.weight", {config_.out_channels, x.dim(1), 3, 3}),
        weights.get("2.bias"), 1, 1);
  }

 private:
  // Linear, SiLU, linear: the `<prefix>0.` and `<prefix>2.` layers.
  Tensor mlp(const std::string& prefix, const Tensor& x, int64_t in, int64_t out) {
    const LeasedWeights weights(store_, kComponent, prefix);
    const Tensor h = backend_.silu(
        backend_.linear(x, get_with_shape(weights, "0.weight", {out, in}), weights.get("0.bias")));
    return backend_.linear(h, get_with_shape(weights, "2.weight", {out, out}),
                           weights.get("2.bias"));
  }

  Backend& backend_;
  WeightStore& store_;
  const UNetConfig& config_;
  const Tensor& context_;
  Tensor emb_silu_;
};

// A UNet config without SDXL's added condition run on a checkpoint with one (or the other way
// round) would silently drop or invent the condition.
void check_added_condition(const WeightStore& store, const UNetConfig& config) {
  const bool has_label_emb = store.source().find(kComponent, "label_emb.0.0.weight") != nullptr;
  if (has_label_emb != (config.adm_in_channels > 0)) {
    fail("{} {} label_emb.0.0.weight, but the UNet config {} an added condition (SDXL)", kComponent,
         has_label_emb ? "has" : "lacks", config.adm_in_channels > 0 ? "expects" : "has no");
  }
}

}  // namespace

UNetConfig UNetConfig::for_architecture(Architecture arch) {
  UNetConfig c;
  switch (arch) {
    case Architecture::SD1:
    case Architecture::SD2:
      c.channel_mult = {1, 2, 4, 4};
      c.transformer_depth = {1, 1, 1, 0};
      c.heads = arch == Architecture::SD1 ? std::vector<int64_t>(4, 8) : heads_of_width(c, 64);
      c.context_dim = arch == Architecture::SD1 ? 768 : 1024;
      return c;
    case Architecture::SDXL:
      c.channel_mult = {1, 2, 4};
      c.transformer_depth = {0, 2, 10};
      c.middle_transformer_depth = 10;
      c.heads = heads_of_width(c, 64);
      c.context_dim = 2048;
      c.time_id_dim = 256;
      c.adm_in_channels = 1280 + kTimeIds * c.time_id_dim;
      return c;
    default:
      fail("no UNet config for architecture {}", architecture_name(arch));
  }
}

Tensor unet_forward(Backend& backend, WeightStore& store, const UNetConfig& config, const Tensor& x,
                    float timestep, const UNetCondition& condition) {
  check_config(config);
  check_added_condition(store, config);
  check_inputs(config, x, condition);
  UNetRun run(backend, store, config, condition.context);
  run.embed_time(x.dim(0), timestep, condition);

  std::vector<Tensor> skips;
  int block = 0;
  auto input = [&](const char* sub) { return fmt::format("input_blocks.{}.{}.", block, sub); };
  Tensor h = run.conv(input("0"), x, config.model_channels, 1);
  skips.push_back(h);
  for (int level = 0; level < config.levels(); ++level) {
    const int64_t channels = config.channels(level);
    for (int i = 0; i < config.num_res_blocks; ++i) {
      ++block;
      h = run.resnet(input("0"), h, channels);
      if (config.transformer_depth[level] > 0) {
        h = run.attention(input("1"), h, config.heads[level], config.transformer_depth[level]);
      }
      skips.push_back(h);
    }
    if (level + 1 < config.levels()) {
      ++block;
      h = run.conv(input("0.op"), h, channels, 2);
      skips.push_back(h);
    }
  }

  const int64_t deepest = config.channels(config.levels() - 1);
  h = run.resnet("middle_block.0.", h, deepest);
  h = run.attention("middle_block.1.", h, config.heads.back(), config.middle_transformer_depth);
  h = run.resnet("middle_block.2.", h, deepest);

  block = 0;
  auto output = [&](int sub) { return fmt::format("output_blocks.{}.{}.", block, sub); };
  for (int level = config.levels() - 1; level >= 0; --level) {
    const int64_t channels = config.channels(level);
    for (int i = 0; i <= config.num_res_blocks; ++i, ++block) {
      h = backend.concat({h, skips.back()}, 1);
      skips.pop_back();
      h = run.resnet(output(0), h, channels);
      int sub = 1;
      if (config.transformer_depth[level] > 0) {
        h = run.attention(output(sub++), h, config.heads[level], config.transformer_depth[level]);
      }
      if (level > 0 && i == config.num_res_blocks) {
        h = run.conv(output(sub) + "conv.", backend.upsample_nearest2x(h), channels, 1);
      }
    }
  }
  return run.output(h);
}

}  // namespace ebb
