#pragma once
// How the attention kernel cuts the work, and the sizes that follow. A block owns kBlockRows
// query rows of one (batch, head) and walks the keys kKeys at a time; its warps form row groups
// of kDimSplit warps, each group owning kWarpRows query rows and each warp of a group one slice
// of the channels.
#include <cstddef>

namespace ebb::attention_tiling {

// kRowTiles: 16-row mma tiles per warp. Two halve the shared-memory reads per product (every
// warp reads each key and value once per tile) but double the register accumulators.
// kKeys: keys per tile; bounded by the registers of the score tile and the shared memory of
// the stages of keys and values.
// kStages: key/value tiles in flight; the copy of tile j + kStages - 1 overlaps the products
// of tile j.
// kDimSplit: warps sharing one row tile, each computing the scores over its channel slice
// (summed through shared memory) and the output of that slice. Only the VAE's 512 channels
// need it: one warp cannot hold 16x512 f32 accumulators.
// kMinBlocks: blocks per multiprocessor the register allocation must allow.
// kScoresAhead: each warp computes the scores of key tile j + 1 around the softmax of tile j,
// so that its tensor-core products overlap its own softmax arithmetic instead of relying on
// other warps (which the block's barriers keep in step with it) to fill the gap. Costs a
// second score tile of registers. Keys and values then move in separate two-tile rings: the
// keys of tile j + 2 and the values of tile j + 1 load while tile j is consumed; kStages is 2.
template <int kHeadDim_, int kWarps_, int kRowTiles_, int kKeys_, int kStages_, int kDimSplit_ = 1,
          int kMinBlocks_ = 1, bool kScoresAhead_ = false>
struct Tiling {
  static constexpr int kHeadDim = kHeadDim_, kWarps = kWarps_, kRowTiles = kRowTiles_;
  static constexpr int kKeys = kKeys_, kStages = kStages_, kDimSplit = kDimSplit_;
  static constexpr int kMinBlocks = kMinBlocks_;
  static constexpr bool kScoresAhead = kScoresAhead_;
};

// Shared memory per block on sm_86/sm_89, the smallest limit of the architectures built for.
constexpr size_t kSharedLimit = 99 * 1024;

constexpr int max_of(int a, int b) {
  return a > b ? a : b;
}

template <class T>
struct Layout : T {
  using T::kDimSplit;
  using T::kHeadDim;
  using T::kKeys;
  using T::kRowTiles;
  using T::kScoresAhead;
  using T::kStages;
  using T::kWarps;

  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kWarpRows = 16 * kRowTiles;
  static constexpr int kRowGroups = kWarps / kDimSplit;
  static constexpr int kBlockRows = kRowGroups * kWarpRows;
  // Channels of one warp's slice, and its k-steps in the score product: of 16 channels, the
  // last of 8 (m16n8k8) when the slice is an odd multiple of 8 (head dimension 40).
  static constexpr int kSliceDim = kHeadDim / kDimSplit;
  static constexpr int kSliceSteps = (kSliceDim + 15) / 16;
  static constexpr bool kHalfStep = kSliceDim % 16 != 0;
  // The 8 rows one ldmatrix reads must fall in distinct banks. Rows whose length is a multiple
  // of 128 bytes are stored tight with their 16-byte pieces permuted (piece c of row r at
  // c ^ (r % 8)); other rows are stored as an odd number of 16-byte units, padded by one unit
  // where the row has an even number.
  static constexpr bool kSwizzle = kHeadDim % 64 == 0;
  static constexpr int kRowStride = kSwizzle || kHeadDim / 8 % 2 == 1 ? kHeadDim : kHeadDim + 8;
  // Element offset of (row, col) from the start of a tile; col is a multiple of 8 or stays
  // within its 16-byte piece.
  __device__ static __forceinline__ int offset(int row, int col) {
    if constexpr (kSwizzle)
      return row * kRowStride + (((col >> 3) ^ (row & 7)) << 3) + (col & 7);
    else
      return row * kRowStride + col;
  }
  static constexpr int kKeyTiles = kKeys / 8;      // 8-key accumulator tiles of the scores
  static constexpr int kOutTiles = kSliceDim / 8;  // 8-channel accumulator tiles of the output

  // Shared memory, in 2-byte elements, rows kRowStride apart: kStages stages (keys then values).
  // The query tile, read into registers once, overlays the last stage (and what follows it),
  // and the stages before it are filled while it loads. With kScoresAhead the two stages hold
  // two key tiles, then two value tiles, and the query tile follows them where shared memory
  // allows; otherwise it overlays the value tiles, and the first values load only after it was
  // read.
  // The output passes through the start of the area on its way out. With a channel split, the
  // f32 partial scores of every warp follow the area.
  static constexpr int kTileElems = kKeys * kRowStride;
  static constexpr int kStageElems = 2 * kTileElems;
  static constexpr int kQueryElems = kBlockRows * kRowStride;
  static constexpr int kQueryStage = kScoresAhead ? kStages : kStages - 1;
  static constexpr bool kQueryOverlaysValues =
      kScoresAhead && 2 * static_cast<size_t>(kStages * kStageElems + kQueryElems) > kSharedLimit;
  static constexpr int kQueryOffset =
      kQueryOverlaysValues ? kStageElems : kQueryStage * kStageElems;
  static constexpr int kAreaElems = max_of(kStages * kStageElems, kQueryOffset + kQueryElems);
  static constexpr int kExchangeFloatsPerWarp = kDimSplit > 1 ? kRowTiles* kKeyTiles * 4 * 32 : 0;
  static constexpr size_t kSharedBytes = 2 * static_cast<size_t>(kAreaElems) +
                                         4 * static_cast<size_t>(kWarps * kExchangeFloatsPerWarp);

  static_assert(kHeadDim % 8 == 0, "rows move in 16-byte pieces");
  static_assert(kSliceDim % 8 == 0 && (kDimSplit == 1 || !kHalfStep),
                "a channel split needs whole k-steps");
  static_assert(!kHalfStep || kKeys % 32 == 0, "the half step loads keys 32 at a time");
  static_assert(kWarps % kDimSplit == 0 && kKeys % 16 == 0 && kStages >= 2);
  static_assert(kRowGroups <= 15, "a named barrier per row group");
  static_assert(!kScoresAhead || (kStages == 2 && kDimSplit == 1), "two rings of two tiles");
  static_assert(kSharedBytes <= kSharedLimit, "must fit sm_86/sm_89 blocks");
};

}  // namespace ebb::attention_tiling
