#include "weights/block_key.h"

#include <gtest/gtest.h>

namespace ebb {
namespace {

TEST(BlockKey, NameUpToItsFirstNumericPart) {
  EXPECT_EQ(block_key("input_blocks.4.1.proj_in.weight"), "input_blocks.4");
  EXPECT_EQ(block_key("transformer.text_model.encoder.layers.11.mlp.fc1.weight"),
            "transformer.text_model.encoder.layers.11");
  EXPECT_EQ(block_key("decoder.up.0.block.1.conv1.weight"), "decoder.up.0");
  EXPECT_EQ(block_key("double_blocks.18.img_attn.qkv.weight"), "double_blocks.18");
}

TEST(BlockKey, TransformerLayersInsideABlockAreBlocksOfTheirOwn) {
  EXPECT_EQ(block_key("input_blocks.4.1.transformer_blocks.2.attn1.to_q.weight"),
            "input_blocks.4.1.transformer_blocks.2");
  EXPECT_EQ(block_key("middle_block.1.transformer_blocks.9.ff.net.2.bias"),
            "middle_block.1.transformer_blocks.9");
  // The transformer's own weights, and numbered parts under other names, stay in the block.
  EXPECT_EQ(block_key("input_blocks.4.1.proj_in.weight"), "input_blocks.4");
  EXPECT_EQ(block_key("output_blocks.2.2.conv.weight"), "output_blocks.2");
  EXPECT_EQ(block_key("decoder.up.0.block.1.conv1.weight"), "decoder.up.0");
}

TEST(BlockKey, UnnumberedNamesAreTheirOwnBlockWithoutTheLastPart) {
  EXPECT_EQ(block_key("decoder.conv_in.weight"), "decoder.conv_in");
  EXPECT_EQ(block_key("text_projection"), "text_projection");
  EXPECT_EQ(block_key("layers2.x.weight"), "layers2.x");  // a digit inside a name is no index
}

}  // namespace
}  // namespace ebb
