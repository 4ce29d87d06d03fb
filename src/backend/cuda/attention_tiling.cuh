#pragma once
// How the attention kernel cuts the work for each head dimension it is built for, and the
// sizes that follow. A block owns kBlockRows query rows of one (batch, head) and walks the keys
// kKeys at a time; its warps form row groups of kDimSplit warps, each group owning kWarpRows
// query rows and each warp of a group one slice of the channels.
#include <cstddef>

namespace ebb::attention_tiling {

// kRowTiles: 16-row mma tiles per warp. Two halve the shared-memory reads per product (every
// warp reads each key and value once per tile) but double the register accumulators, so the
// wide heads use one.
// kDimSplit: warps sharing one row tile, each computing the scores over its channel slice
// (summed through shared memory) and the output of that slice. Only the VAE's 512 channels
// need it: one warp cannot hold 16x512 f32 accumulators.
// kKeys: keys per tile; bounded by the registers of the score tile and the shared memory of
// two stages of keys and values.
// Shared memory stays under 99 KB per block (the sm_86/sm_89 limit) for every head dimension.
template <int kHeadDim>
struct Tiling;
template <>
struct Tiling<40> {
  static constexpr int kWarps = 4, kRowTiles = 2, kDimSplit = 1, kKeys = 64, kMinBlocks = 2;
};
template <>
struct Tiling<64> {
  static constexpr int kWarps = 4, kRowTiles = 2, kDimSplit = 1, kKeys = 64, kMinBlocks = 2;
};
template <>
struct Tiling<80> {
  static constexpr int kWarps = 4, kRowTiles = 2, kDimSplit = 1, kKeys = 32, kMinBlocks = 2;
};
template <>
struct Tiling<128> {
  static constexpr int kWarps = 8, kRowTiles = 1, kDimSplit = 1, kKeys = 64, kMinBlocks = 1;
};
template <>
struct Tiling<160> {
  static constexpr int kWarps = 8, kRowTiles = 1, kDimSplit = 1, kKeys = 64, kMinBlocks = 1;
};
template <>
struct Tiling<512> {
  static constexpr int kWarps = 8, kRowTiles = 1, kDimSplit = 4, kKeys = 16, kMinBlocks = 1;
};

constexpr int max_of(int a, int b) {
  return a > b ? a : b;
}

template <int kHeadDim>
struct Layout : Tiling<kHeadDim> {
  using Tiling<kHeadDim>::kWarps;
  using Tiling<kHeadDim>::kRowTiles;
  using Tiling<kHeadDim>::kDimSplit;
  using Tiling<kHeadDim>::kKeys;

  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kWarpRows = 16 * kRowTiles;
  static constexpr int kRowGroups = kWarps / kDimSplit;
  static constexpr int kBlockRows = kRowGroups * kWarpRows;
  // Channels of one warp's slice, and its k-steps of 16 in the score product: a head dimension
  // that is not a multiple of 16 (40) is padded with zero channels in shared memory.
  static constexpr int kSliceDim = kHeadDim / kDimSplit;
  static constexpr int kSliceSteps = (kSliceDim + 15) / 16;
  static constexpr int kPaddedDim = kDimSplit * 16 * kSliceSteps;
  // Rows in shared memory are 16 bytes longer than the padded head, an odd number of 16-byte
  // units, so that the 8 rows one ldmatrix reads fall in distinct banks.
  static constexpr int kRowStride = kPaddedDim + 8;
  static constexpr int kKeyTiles = kKeys / 8;      // 8-key accumulator tiles of the scores
  static constexpr int kOutTiles = kSliceDim / 8;  // 8-channel accumulator tiles of the output

  // Shared memory, in 2-byte elements: stage 0 (keys then values), then a region that first
  // holds the query tile, then stage 1, then the output tile on its way out; then, with a
  // channel split, the f32 partial scores of every warp.
  static constexpr int kStageElems = 2 * kKeys * kRowStride;
  static constexpr int kQueryElems = kBlockRows * kRowStride;
  static constexpr int kRegion1Elems = max_of(kStageElems, kQueryElems);
  static constexpr int kExchangeFloatsPerWarp = kDimSplit > 1 ? kRowTiles* kKeyTiles * 4 * 32 : 0;
  static constexpr size_t kSharedBytes = 2 * static_cast<size_t>(kStageElems + kRegion1Elems) +
                                         4 * static_cast<size_t>(kWarps * kExchangeFloatsPerWarp);

  static_assert(kHeadDim % 8 == 0, "rows move in 16-byte pieces");
  static_assert(kDimSplit == 1 || kSliceDim % 16 == 0, "split slices cannot be padded");
  static_assert(kWarps % kDimSplit == 0 && kKeys % 16 == 0);
  static_assert(kSharedBytes <= 99 * 1024, "must fit sm_86/sm_89 blocks");
};

}  // namespace ebb::attention_tiling
