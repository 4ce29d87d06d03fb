#pragma once
// Random but valid tensor data of any DType, for synthetic checkpoints and tests.
#include <cstddef>
#include <cstdint>
#include <span>

#include "tensor/dtype.h"

namespace ebb {

// Fills `dst` with random data of type `t` whose values are all finite and, decoded to f32,
// lie in [-scale, scale]:
// - F64/F32/F16/BF16: uniform in [-scale, scale) before rounding to the type (F16 and BF16 may
//   round to just beyond the bound);
// - F8 types: uniform over the codes whose values lie in the range;
// - integer types: uniform over the integers in the range (unsigned: [0, scale]); BOOL: 0 or 1;
// - block types: random quants, with per-block scales drawn so that decoded values stay within
//   [-0.9 * scale, 0.9 * scale] (scales that would round up are rounded toward zero instead).
// `dst` holds whole blocks (single elements, for plain types) starting at block `first_block`
// of a tensor. The bytes depend only on (t, seed, scale) and each block's index, so a tensor
// filled in chunks, in any order or in parallel, equals one filled in a single call.
// ebb::Error when `dst` is not a whole number of blocks, when `scale` is not positive and
// finite, or when values that large do not fit `t` (above 65504 for F16 and the f16-scaled
// block types, beyond the type's range for integers).
void fill_random(DType t, std::span<std::byte> dst, uint64_t seed, float scale,
                 uint64_t first_block = 0);

}  // namespace ebb
