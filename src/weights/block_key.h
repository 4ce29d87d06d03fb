#pragma once
// The unit of residency inside a component: a tensor's name up to and including its first
// numeric part ("input_blocks.4.1.proj_in.weight" → "input_blocks.4",
// "transformer.text_model.encoder.layers.5.mlp.fc1.weight" → "...encoder.layers.5",
// "decoder.up.0.block.1.conv1.weight" → "decoder.up.0"); a name with no numeric part is its own
// block without its last part ("decoder.conv_in.weight" → "decoder.conv_in"). Every model's
// repeated structure (UNet blocks, transformer layers, VAE levels) is numbered, so blocks are
// what the models lease one at a time, without a table per architecture. A numbered layer of a
// spatial transformer inside such a block is a block of its own
// ("input_blocks.4.1.transformer_blocks.2.attn1.to_q.weight" →
// "input_blocks.4.1.transformer_blocks.2"): the transformer leases its layers one at a time, and
// SDXL's ten-layer blocks (~0.75 GiB each) streamed whole would size the upload ring by them.
#include <string_view>

namespace ebb {

std::string_view block_key(std::string_view tensor_name);

}  // namespace ebb
