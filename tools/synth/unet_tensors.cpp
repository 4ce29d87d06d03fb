// LDM's UNetModel numbers its blocks flat (input_blocks.N.K, output_blocks.N.K, where K is the
// layer inside a TimestepEmbedSequential); diffusers groups them per resolution level
// (down_blocks.L.resnets.J, up_blocks.L.attentions.J, …). The walk below follows the LDM
// constructor and names each module both ways.
#include <fmt/format.h>

#include "synth/model_tensors.h"

namespace ebb::synth {
namespace {

class UNetWalker {
 public:
  UNetWalker(TensorCollector& out, const UNetConfig& config) : out_(out), c_(config) {}

  void walk() {
    const int64_t mc = c_.model_channels;
    const int64_t ted = c_.time_embed_dim();
    out_.linear({"time_embed.0", "time_embedding.linear_1"}, ted, mc);
    out_.linear({"time_embed.2", "time_embedding.linear_2"}, ted, ted);
    if (c_.adm_in_channels > 0) {
      out_.linear({"label_emb.0.0", "add_embedding.linear_1"}, ted, c_.adm_in_channels);
      out_.linear({"label_emb.0.2", "add_embedding.linear_2"}, ted, ted);
    }
    out_.conv({"input_blocks.0.0", "conv_in"}, mc, c_.in_channels, 3);
    down();
    middle();
    up();
    out_.norm({"out.0", "conv_norm_out"}, mc);
    out_.conv({"out.2", "conv_out"}, c_.out_channels, mc, 3);
  }

 private:
  void down() {
    int block = 1;
    for (int level = 0; level < c_.levels(); ++level) {
      for (int j = 0; j < c_.num_res_blocks; ++j, ++block) {
        const ModulePath in{fmt::format("input_blocks.{}", block),
                            fmt::format("down_blocks.{}", level)};
        res_block(in.child("0", fmt::format("resnets.{}", j)), ch_, c_.channels(level));
        ch_ = c_.channels(level);
        if (c_.attention[level])
          transformer(in.child("1", fmt::format("attentions.{}", j)), level,
                      c_.transformer_depth[level]);
        skips_.push_back(ch_);
      }
      if (level + 1 < c_.levels()) {
        out_.conv({fmt::format("input_blocks.{}.0.op", block),
                   fmt::format("down_blocks.{}.downsamplers.0.conv", level)},
                  ch_, ch_, 3);
        skips_.push_back(ch_);
        ++block;
      }
    }
  }

  void middle() {
    const int last = c_.levels() - 1;
    res_block({"middle_block.0", "mid_block.resnets.0"}, ch_, ch_);
    transformer({"middle_block.1", "mid_block.attentions.0"}, last, c_.transformer_depth[last]);
    res_block({"middle_block.2", "mid_block.resnets.1"}, ch_, ch_);
  }

  void up() {
    int block = 0;
    for (int level = c_.levels() - 1, up_level = 0; level >= 0; --level, ++up_level) {
      for (int j = 0; j <= c_.num_res_blocks; ++j, ++block) {
        const ModulePath out{fmt::format("output_blocks.{}", block),
                             fmt::format("up_blocks.{}", up_level)};
        const int64_t skip = skips_.back();
        skips_.pop_back();
        res_block(out.child("0", fmt::format("resnets.{}", j)), ch_ + skip, c_.channels(level));
        ch_ = c_.channels(level);
        int layer = 1;
        if (c_.attention[level])
          transformer(out.child(fmt::format("{}", layer++), fmt::format("attentions.{}", j)), level,
                      c_.transformer_depth[level]);
        if (level > 0 && j == c_.num_res_blocks)
          out_.conv(out.child(fmt::format("{}.conv", layer), "upsamplers.0.conv"), ch_, ch_, 3);
      }
    }
  }

  void res_block(const ModulePath& p, int64_t in, int64_t out) {
    out_.norm(p.child("in_layers.0", "norm1"), in);
    out_.conv(p.child("in_layers.2", "conv1"), out, in, 3);
    out_.linear(p.child("emb_layers.1", "time_emb_proj"), out, c_.time_embed_dim());
    out_.norm(p.child("out_layers.0", "norm2"), out);
    out_.conv(p.child("out_layers.3", "conv2"), out, out, 3);
    if (in != out) out_.conv(p.child("skip_connection", "conv_shortcut"), out, in, 1);
  }

  // SpatialTransformer ↔ Transformer2DModel; heads × head size is the block's width in every
  // Stable Diffusion UNet.
  void transformer(const ModulePath& p, int level, int depth) {
    const int64_t ch = c_.channels(level);
    out_.norm(p.child("norm"), ch);
    if (c_.use_linear_projection)
      out_.linear(p.child("proj_in"), ch, ch);
    else
      out_.conv(p.child("proj_in"), ch, ch, 1);
    for (int d = 0; d < depth; ++d)
      transformer_block(p.child(fmt::format("transformer_blocks.{}", d)), ch);
    if (c_.use_linear_projection)
      out_.linear(p.child("proj_out"), ch, ch);
    else
      out_.conv(p.child("proj_out"), ch, ch, 1);
  }

  void transformer_block(const ModulePath& p, int64_t dim) {
    attention(p.child("attn1"), dim, dim);
    // GEGLU: one projection yields the value and the gate.
    out_.linear(p.child("ff.net.0.proj"), dim * 4 * 2, dim);
    out_.linear(p.child("ff.net.2"), dim, dim * 4);
    attention(p.child("attn2"), dim, c_.context_dim);
    for (const char* norm : {"norm1", "norm2", "norm3"}) out_.norm(p.child(norm), dim);
  }

  void attention(const ModulePath& p, int64_t dim, int64_t context) {
    out_.linear(p.child("to_q"), dim, dim, false);
    out_.linear(p.child("to_k"), dim, context, false);
    out_.linear(p.child("to_v"), dim, context, false);
    out_.linear(p.child("to_out.0"), dim, dim);
  }

  TensorCollector& out_;
  const UNetConfig& c_;
  int64_t ch_ = c_.model_channels;
  std::vector<int64_t> skips_{c_.model_channels};  // channels each input block hands across
};

}  // namespace

void add_unet(TensorCollector& out, const UNetConfig& config) {
  UNetWalker(out, config).walk();
}

}  // namespace ebb::synth
