#pragma once
// Tiled VAE decode and encode (--vae-tiling): the latent grid is cut into overlapping square
// tiles, each tile runs through the VAE alone, and the results are blended with linear
// (feathered) weights across the overlaps. Activations then scale with the tile, not the
// image. Tiles see less context than the whole image (group norm statistics, the receptive
// field at their borders), so seams differ slightly from an untiled run; a single tile
// covering everything gives the untiled result bit for bit.
#include <cstdint>
#include <functional>
#include <vector>

#include "backend/backend.h"
#include "models/vae.h"
#include "weights/weight_store.h"

namespace ebb {

struct VaeTiling {
  int64_t tile = 0;     // tile side, in latent pixels
  int64_t overlap = 0;  // latent pixels shared by neighbouring tiles (less than tile)
};

// Where tiles of `tile` pixels start along an axis of `length` pixels so that neighbours share
// at least `overlap` pixels and the last tile ends at `length`; spread evenly, deterministic.
std::vector<int64_t> vae_tile_starts(int64_t length, int64_t tile, int64_t overlap);

// An upper estimate of the activation bytes (arena tag Activations) one VAE pass holds at
// once for an image of height × width pixels, decode or encode; the backend's scratch (bounded
// per op) comes on top.
uint64_t vae_activation_bytes(const VaeConfig& config, int64_t height, int64_t width);

// The largest square tile whose estimated activations fit `budget_bytes`, with `overlap`; fails
// when not even a tile of 2·overlap + 1 latent pixels fits.
VaeTiling vae_tiling_for_budget(const VaeConfig& config, uint64_t budget_bytes, int64_t overlap);

// What runs on each tile: a contiguous NCHW tile in, its NCHW result out.
using TilePass = std::function<Tensor(const Tensor&)>;

// Runs `pass` on each tile of `input` (NCHW, in_scale input pixels per latent pixel) and blends
// its outputs (out_scale output pixels per latent pixel) into one tensor.
Tensor vae_tiled_pass(Backend& backend, const Tensor& input, int64_t in_scale, int64_t out_scale,
                      const VaeTiling& tiling, const TilePass& pass);

// vae_decode and vae_encode_moments, tile by tile.
Tensor vae_decode_tiled(Backend& backend, WeightStore& store, const VaeConfig& config,
                        const Tensor& z, const VaeTiling& tiling);
Tensor vae_encode_moments_tiled(Backend& backend, WeightStore& store, const VaeConfig& config,
                                const Tensor& image, const VaeTiling& tiling);

}  // namespace ebb
