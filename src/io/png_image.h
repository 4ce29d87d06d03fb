#pragma once
// PNG in memory: the images Ebb writes (with their generation parameters as text chunks, so
// image viewers and other UIs can read them back) and the images img2img reads.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ebb {

// 8-bit pixels, rows top to bottom, channels interleaved (RGB or RGBA).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;             // 3 (RGB) or 4 (RGBA)
  std::vector<uint8_t> pixels;  // width * height * channels bytes
};

using PngText = std::vector<std::pair<std::string, std::string>>;  // keyword, UTF-8 value

// Encodes the image as a PNG file. Each text entry becomes a tEXt chunk when every character
// of its value is Latin-1 (stored as Latin-1, as tEXt requires) and an uncompressed iTXt chunk
// (UTF-8) otherwise. Keywords are 1-79 printable ASCII characters without leading, trailing or
// doubled spaces; values are valid UTF-8 without NUL. Anything else, or an image whose size
// does not match its pixels, is an ebb::Error.
std::vector<uint8_t> encode_png(const Image& image, const PngText& text = {});

// Decodes a PNG file of any colour type and bit depth into 8-bit RGB: grey is replicated,
// palettes are expanded, 16-bit samples are scaled to 8 bits and alpha is dropped (as
// stable-diffusion.cpp's 3-channel load does; no gamma correction). Malformed or truncated
// data, or a size the file's compressed data could not hold, is an ebb::Error naming
// name_for_errors.
Image decode_png(std::span<const uint8_t> file, const std::string& name_for_errors);

}  // namespace ebb
