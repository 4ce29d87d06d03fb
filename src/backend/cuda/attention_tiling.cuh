#pragma once
// How the attention kernel cuts the work for each head dimension it is built for, and the
// sizes that follow. A block owns the query rows of one (batch, head) and walks the keys kKeys
// at a time; its warps form row groups of kDimSplit warps, each group owning 16·row-tiles query
// rows and each warp of a group one slice of the channels. Plain C++, so that host code can
// plan launches from the same numbers.
#include <cstddef>

namespace ebb::attention_tiling {

// kWarps: the most warps per block; a launch may use fewer (any power-of-two fraction that
// keeps whole row groups), to spread short problems over more multiprocessors.
// kRowTiles: the most 16-row mma tiles per warp (each count up to it is a kernel of its own).
// Two halve the shared-memory reads per product (one key or value fragment serves both) but
// double the register accumulators, so the wide heads use one.
// kDimSplit: warps sharing one row tile, each computing the scores over its channel slice
// (summed through shared memory) and the output of that slice. Only the VAE's 512 channels
// need it: one warp cannot hold 16x512 f32 accumulators.
// kKeys: keys per tile; bounded by the registers of the score tile and the shared memory of
// the stages of keys and values.
// kStages: key/value tiles in flight; the copy of tile j + kStages - 1 overlaps the products
// of tile j.
// Shared memory stays under 99 KB per block (the sm_86/sm_89 limit) for every head dimension;
// on sm_80/sm_90 two blocks of the 4-warp kernels fit on a multiprocessor.
template <int kHeadDim>
struct Tiling;
template <>
struct Tiling<40> {
  static constexpr int kWarps = 4, kRowTiles = 2, kDimSplit = 1, kKeys = 64, kStages = 3;
  static constexpr int kMinBlocks = 2;
};
template <>
struct Tiling<64> {
  static constexpr int kWarps = 4, kRowTiles = 2, kDimSplit = 1, kKeys = 64, kStages = 3;
  static constexpr int kMinBlocks = 2;
};
template <>
struct Tiling<80> {
  static constexpr int kWarps = 4, kRowTiles = 2, kDimSplit = 1, kKeys = 32, kStages = 3;
  static constexpr int kMinBlocks = 2;
};
// 32 rows per warp with 32-key tiles: 64 registers of query fragments, 128 of output and 32 of
// scores still fit 255, and each key and value fragment feeds two products.
template <>
struct Tiling<128> {
  static constexpr int kWarps = 4, kRowTiles = 2, kDimSplit = 1, kKeys = 32, kStages = 3;
  static constexpr int kMinBlocks = 2;
};
template <>
struct Tiling<160> {
  static constexpr int kWarps = 8, kRowTiles = 1, kDimSplit = 1, kKeys = 64, kStages = 2;
  static constexpr int kMinBlocks = 1;
};
// 64 query rows per block: every block streams all keys and values of the single head from L2,
// so the rows per block set the L2 traffic. The query tile then fills both stages; it is read
// into registers before the first key tile is copied.
template <>
struct Tiling<512> {
  static constexpr int kWarps = 8, kRowTiles = 2, kDimSplit = 4, kKeys = 16, kStages = 2;
  static constexpr int kMinBlocks = 1;
};

constexpr int max_of(int a, int b) {
  return a > b ? a : b;
}

template <int kHeadDim, int kRowTiles_>
struct Layout : Tiling<kHeadDim> {
  using Tiling<kHeadDim>::kWarps;
  using Tiling<kHeadDim>::kDimSplit;
  using Tiling<kHeadDim>::kKeys;
  using Tiling<kHeadDim>::kStages;
  static constexpr int kRowTiles = kRowTiles_;

  static constexpr int kMaxThreads = 32 * kWarps;
  static constexpr int kWarpRows = 16 * kRowTiles;
  static constexpr int kMaxBlockRows = kWarps / kDimSplit * kWarpRows;
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

  // Shared memory, in 2-byte elements: kStages stages (keys then values) of rows kRowStride
  // apart. The query tile overlays the last stages it needs, from kQueryStage on; the stages
  // before it are filled while the queries load. The output passes through the start of the
  // area on its way out. With a channel split, the f32 partial scores of every warp follow.
  static constexpr int kStageElems = 2 * kKeys * kRowStride;
  static constexpr int kQueryElems = kMaxBlockRows * kRowStride;
  static constexpr int kQueryStage =
      max_of(0, kStages - (kQueryElems + kStageElems - 1) / kStageElems);
  static constexpr int kAreaElems =
      max_of(kStages * kStageElems, kQueryStage* kStageElems + kQueryElems);
  static constexpr int kAreaRows = kAreaElems / kRowStride;
  static constexpr int kExchangeFloatsPerWarp = kDimSplit > 1 ? kRowTiles* kKeyTiles * 4 * 32 : 0;
  static constexpr size_t kSharedBytes = 2 * static_cast<size_t>(kAreaElems) +
                                         4 * static_cast<size_t>(kWarps * kExchangeFloatsPerWarp);

  static_assert(kHeadDim % 8 == 0, "rows move in 16-byte pieces");
  static_assert(kDimSplit == 1 || kSliceDim % 16 == 0, "split slices cannot be padded");
  static_assert(kWarps % kDimSplit == 0 && kKeys % 16 == 0 && kStages >= 2);
  static_assert(kRowTiles >= 1 && kRowTiles <= Tiling<kHeadDim>::kRowTiles);
  static_assert(kWarps / kDimSplit <= 15, "a named barrier per row group");
  static_assert(kSharedBytes <= 99 * 1024, "must fit sm_86/sm_89 blocks");
};

}  // namespace ebb::attention_tiling
