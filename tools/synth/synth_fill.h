#pragma once
// Where synthetic tensor values come from: the shared generator of src/tensor/random_blocks.h,
// with a stream per tensor and ranges that suit each kind of weight.
#include <cstddef>
#include <cstdint>
#include <span>

#include "tensor/dtype.h"

namespace ebb::synth {

// Values are drawn uniformly from [center - half_width, center + half_width).
struct ValueRange {
  float center = 0.0f;
  float half_width = 0.0f;
};

// Fills `dst`, which holds bytes [byte_offset, byte_offset + dst.size()) of a tensor of type
// `type`, with random values. Element (or block) i depends only on (seed, tensor_key, i), so any
// split of a tensor into chunks, filled in any order, gives the same bytes. `byte_offset` and
// the size must cover whole elements (whole blocks). Float types get values in `range`;
// quantized types get random quants with finite block scales chosen so that values stay
// within about ±(|center| + half_width). Fails for integer types.
void synth_fill(DType type, std::span<std::byte> dst, uint64_t seed, uint64_t tensor_key,
                uint64_t byte_offset, ValueRange range);

// Fills an I64 position-id buffer of shape [1, n]: element i is i.
void fill_position_ids(std::span<std::byte> dst, uint64_t byte_offset);

}  // namespace ebb::synth
