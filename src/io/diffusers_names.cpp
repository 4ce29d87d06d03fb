#include "io/diffusers_names.h"

#include <algorithm>
#include <set>
#include <span>

#include "core/error.h"
#include "fmt/format.h"

namespace ebb {
namespace {

// Renames of the leaves inside one kind of module.
struct LeafRename {
  std::string_view diffusers, original;
};

constexpr LeafRename kUNetResnetLeaves[] = {
    {"norm1.", "in_layers.0."},          {"conv1.", "in_layers.2."},
    {"time_emb_proj.", "emb_layers.1."}, {"norm2.", "out_layers.0."},
    {"conv2.", "out_layers.3."},         {"conv_shortcut.", "skip_connection."},
};
constexpr LeafRename kVaeResnetLeaves[] = {{"conv_shortcut.", "nin_shortcut."}};
// Older diffusers files use query/key/value/proj_attn.
constexpr LeafRename kVaeAttentionLeaves[] = {
    {"group_norm.", "norm."},    {"to_q.", "q."},  {"to_k.", "k."}, {"to_v.", "v."},
    {"to_out.0.", "proj_out."},  {"query.", "q."}, {"key.", "k."},  {"value.", "v."},
    {"proj_attn.", "proj_out."},
};

enum class Leaves { Same, UNetResnet, VaeResnet, VaeAttention };

struct PrefixRule {
  std::string diffusers, original;
  Leaves leaves = Leaves::Same;
};

class Structure {
 public:
  explicit Structure(const std::vector<TensorInfo*>& tensors) {
    for (const TensorInfo* t : tensors) names_.insert(t->name);
  }
  bool has(const std::string& prefix) const {
    const auto it = names_.lower_bound(prefix);
    return it != names_.end() && it->compare(0, prefix.size(), prefix) == 0;
  }
  // How many of pattern.format(0), pattern.format(1), ... are module prefixes present.
  int count(std::string_view pattern) const {
    int n = 0;
    while (has(fmt::format(fmt::runtime(pattern), n))) ++n;
    return n;
  }

 private:
  std::set<std::string> names_;
};

// UNet2DConditionModel → LDM UNetModel. input_blocks hold conv_in, then per level its resnets
// (with their attention as .1) and the downsampler; output_blocks per level one more resnet
// than the encoder, the upsampler last in the block of the level's final resnet.
std::vector<PrefixRule> unet_rules(const Structure& s) {
  const int levels = s.count("down_blocks.{}.");
  // Blocks per level: every level has as many (a partial file may lack the resnets).
  const int down =
      std::max(s.count("down_blocks.0.resnets.{}."), s.count("down_blocks.0.attentions.{}."));
  const int up =
      std::max(s.count("up_blocks.0.resnets.{}."), s.count("up_blocks.0.attentions.{}."));
  std::vector<PrefixRule> rules = {
      {"conv_in.", "input_blocks.0.0."},
      {"time_embedding.linear_1.", "time_embed.0."},
      {"time_embedding.linear_2.", "time_embed.2."},
      {"add_embedding.linear_1.", "label_emb.0.0."},
      {"add_embedding.linear_2.", "label_emb.0.2."},
      {"mid_block.resnets.0.", "middle_block.0.", Leaves::UNetResnet},
      {"conv_norm_out.", "out.0."},
      {"conv_out.", "out.2."},
  };
  const bool mid_attention = s.has("mid_block.attentions.0.");
  if (mid_attention) rules.push_back({"mid_block.attentions.0.", "middle_block.1."});
  rules.push_back({"mid_block.resnets.1.", fmt::format("middle_block.{}.", mid_attention ? 2 : 1),
                   Leaves::UNetResnet});
  for (int i = 0; i < levels; ++i) {
    for (int j = 0; j < down; ++j) {
      const int block = 1 + i * (down + 1) + j;
      rules.push_back({fmt::format("down_blocks.{}.resnets.{}.", i, j),
                       fmt::format("input_blocks.{}.0.", block), Leaves::UNetResnet});
      rules.push_back({fmt::format("down_blocks.{}.attentions.{}.", i, j),
                       fmt::format("input_blocks.{}.1.", block)});
    }
    rules.push_back({fmt::format("down_blocks.{}.downsamplers.0.conv.", i),
                     fmt::format("input_blocks.{}.0.op.", 1 + i * (down + 1) + down)});
    for (int j = 0; j < up; ++j) {
      const int block = i * up + j;
      rules.push_back({fmt::format("up_blocks.{}.resnets.{}.", i, j),
                       fmt::format("output_blocks.{}.0.", block), Leaves::UNetResnet});
      rules.push_back({fmt::format("up_blocks.{}.attentions.{}.", i, j),
                       fmt::format("output_blocks.{}.1.", block)});
    }
    const bool attention = s.has(fmt::format("up_blocks.{}.attentions.0.", i));
    rules.push_back({fmt::format("up_blocks.{}.upsamplers.0.conv.", i),
                     fmt::format("output_blocks.{}.{}.conv.", i * up + up - 1, attention ? 2 : 1)});
  }
  return rules;
}

// AutoencoderKL → CompVis: the decoder's up blocks run from the coarsest level, which the
// original numbers last.
std::vector<PrefixRule> vae_rules(const Structure& s) {
  std::vector<PrefixRule> rules;
  for (const std::string part : {"encoder", "decoder"}) {
    rules.push_back({part + ".conv_norm_out.", part + ".norm_out."});
    rules.push_back({part + ".mid_block.resnets.0.", part + ".mid.block_1.", Leaves::VaeResnet});
    rules.push_back({part + ".mid_block.resnets.1.", part + ".mid.block_2.", Leaves::VaeResnet});
    rules.push_back(
        {part + ".mid_block.attentions.0.", part + ".mid.attn_1.", Leaves::VaeAttention});
  }
  const int down_levels = s.count("encoder.down_blocks.{}.");
  for (int i = 0; i < down_levels; ++i) {
    for (int j = 0; j < s.count(fmt::format("encoder.down_blocks.{}.resnets.{{}}.", i)); ++j)
      rules.push_back({fmt::format("encoder.down_blocks.{}.resnets.{}.", i, j),
                       fmt::format("encoder.down.{}.block.{}.", i, j), Leaves::VaeResnet});
    rules.push_back({fmt::format("encoder.down_blocks.{}.downsamplers.0.conv.", i),
                     fmt::format("encoder.down.{}.downsample.conv.", i)});
  }
  const int up_levels = s.count("decoder.up_blocks.{}.");
  for (int i = 0; i < up_levels; ++i) {
    const int level = up_levels - 1 - i;
    for (int j = 0; j < s.count(fmt::format("decoder.up_blocks.{}.resnets.{{}}.", i)); ++j)
      rules.push_back({fmt::format("decoder.up_blocks.{}.resnets.{}.", i, j),
                       fmt::format("decoder.up.{}.block.{}.", level, j), Leaves::VaeResnet});
    rules.push_back({fmt::format("decoder.up_blocks.{}.upsamplers.0.conv.", i),
                     fmt::format("decoder.up.{}.upsample.conv.", level)});
  }
  return rules;
}

std::span<const LeafRename> leaf_renames(Leaves leaves) {
  switch (leaves) {
    case Leaves::UNetResnet:
      return kUNetResnetLeaves;
    case Leaves::VaeResnet:
      return kVaeResnetLeaves;
    case Leaves::VaeAttention:
      return kVaeAttentionLeaves;
    case Leaves::Same:
      break;
  }
  return {};
}

// Names outside every module the table lists are the same in both layouts (conv_in of the VAE,
// quant_conv, ...), as long as they are not diffusers block names.
bool is_block_name(std::string_view name) {
  for (std::string_view block : {"down_blocks.", "up_blocks.", "mid_block.", "encoder.down_blocks.",
                                 "decoder.up_blocks.", "encoder.mid_block.", "decoder.mid_block."})
    if (name.starts_with(block)) return true;
  return false;
}

}  // namespace

void rename_diffusers_tensors(DiffusersModel model, const std::vector<TensorInfo*>& tensors,
                              std::string_view where) {
  const Structure structure(tensors);
  const std::vector<PrefixRule> rules =
      model == DiffusersModel::UNet ? unet_rules(structure) : vae_rules(structure);
  for (TensorInfo* t : tensors) {
    const PrefixRule* rule = nullptr;
    for (const PrefixRule& r : rules)
      if (t->name.starts_with(r.diffusers) &&
          (!rule || r.diffusers.size() > rule->diffusers.size()))
        rule = &r;
    if (!rule) {
      if (is_block_name(t->name))
        fail("{}: no single-file name for diffusers tensor {}", where, t->name);
      continue;
    }
    std::string leaf = t->name.substr(rule->diffusers.size());
    for (const LeafRename& r : leaf_renames(rule->leaves))
      if (leaf.starts_with(r.diffusers)) {
        leaf = std::string(r.original) + leaf.substr(r.diffusers.size());
        break;
      }
    if (rule->leaves == Leaves::VaeAttention && t->shape.size() == 2 && leaf.find("norm.") != 0)
      t->shape.insert(t->shape.end(), {1, 1});
    t->name = rule->original + leaf;
  }
}

}  // namespace ebb
