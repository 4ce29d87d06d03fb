// CompVis numbers the decoder's levels like the encoder's (up.0 is the full-resolution level);
// diffusers numbers them in execution order (up_blocks.0 is the lowest resolution). Its mid-block
// attention is 1×1 convolutions in CompVis and linear layers in diffusers.
#include <fmt/format.h>

#include "synth/model_tensors.h"

namespace ebb::synth {
namespace {

class VaeWalker {
 public:
  VaeWalker(TensorCollector& out, const VaeConfig& config) : out_(out), c_(config) {}

  void walk() {
    encoder();
    decoder();
    const int64_t z2 = 2 * c_.z_channels;
    out_.conv({"quant_conv", "quant_conv"}, z2, z2, 1);
    out_.conv({"post_quant_conv", "post_quant_conv"}, c_.z_channels, c_.z_channels, 1);
  }

 private:
  int64_t width(int level) const { return int64_t{c_.ch} * c_.ch_mult[level]; }

  void encoder() {
    const ModulePath e{"encoder", "encoder"};
    out_.conv(e.child("conv_in"), c_.ch, c_.in_channels, 3);
    int64_t ch = c_.ch;
    for (int level = 0; level < c_.levels(); ++level) {
      const ModulePath down =
          e.child(fmt::format("down.{}", level), fmt::format("down_blocks.{}", level));
      for (int j = 0; j < c_.num_res_blocks; ++j) {
        res_block(down.child(fmt::format("block.{}", j), fmt::format("resnets.{}", j)), ch,
                  width(level));
        ch = width(level);
      }
      if (level + 1 < c_.levels())
        out_.conv(down.child("downsample.conv", "downsamplers.0.conv"), ch, ch, 3);
    }
    mid(e, ch);
    out_.norm(e.child("norm_out", "conv_norm_out"), ch);
    out_.conv(e.child("conv_out"), 2 * c_.z_channels, ch, 3);
  }

  void decoder() {
    const ModulePath d{"decoder", "decoder"};
    int64_t ch = width(c_.levels() - 1);
    out_.conv(d.child("conv_in"), ch, c_.z_channels, 3);
    mid(d, ch);
    for (int level = c_.levels() - 1; level >= 0; --level) {
      const ModulePath up = d.child(fmt::format("up.{}", level),
                                    fmt::format("up_blocks.{}", c_.levels() - 1 - level));
      for (int j = 0; j <= c_.num_res_blocks; ++j) {
        res_block(up.child(fmt::format("block.{}", j), fmt::format("resnets.{}", j)), ch,
                  width(level));
        ch = width(level);
      }
      if (level > 0) out_.conv(up.child("upsample.conv", "upsamplers.0.conv"), ch, ch, 3);
    }
    out_.norm(d.child("norm_out", "conv_norm_out"), ch);
    out_.conv(d.child("conv_out"), c_.out_channels, ch, 3);
  }

  void mid(const ModulePath& p, int64_t ch) {
    res_block(p.child("mid.block_1", "mid_block.resnets.0"), ch, ch);
    const ModulePath attn = p.child("mid.attn_1", "mid_block.attentions.0");
    out_.norm(attn.child("norm", "group_norm"), ch);
    for (auto [ldm, hf] :
         {std::pair{"q", "to_q"}, {"k", "to_k"}, {"v", "to_v"}, {"proj_out", "to_out.0"}}) {
      const ModulePath layer = attn.child(ldm, hf);
      out_.add(layer, "weight", {ch, ch, 1, 1}, {ch, ch});
      out_.add(layer, "bias", {ch});
    }
    res_block(p.child("mid.block_2", "mid_block.resnets.1"), ch, ch);
  }

  void res_block(const ModulePath& p, int64_t in, int64_t out) {
    out_.norm(p.child("norm1"), in);
    out_.conv(p.child("conv1"), out, in, 3);
    out_.norm(p.child("norm2"), out);
    out_.conv(p.child("conv2"), out, out, 3);
    if (in != out) out_.conv(p.child("nin_shortcut", "conv_shortcut"), out, in, 1);
  }

  TensorCollector& out_;
  const VaeConfig& c_;
};

}  // namespace

void add_vae(TensorCollector& out, const VaeConfig& config) {
  VaeWalker(out, config).walk();
}

}  // namespace ebb::synth
