#include "io/png_image.h"

#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>

#include "core/checked_math.h"
#include "core/error.h"

namespace ebb {
namespace {

// libpng reports errors by calling its error handler, which must not return: ours records the
// message and longjmps back to the setjmp of the phase function that made the failing call.
// Throwing instead would unwind through libpng's C frames, which need not have unwind tables
// and would be left with half-updated state. So every libpng call that can fail runs inside a
// phase function (write_png_file, read_png_header, read_png_rows) whose frame holds no object
// with a destructor between its setjmp and its return, and the callbacks libpng calls hold none
// when they call png_error. Objects that own memory (the output vector, the png structs' RAII
// holders) live in the callers' frames, which the longjmp never crosses.
struct ErrorSink {
  char message[256] = {};
};

[[noreturn]] void on_png_error(png_structp png, png_const_charp message) {
  auto* sink = static_cast<ErrorSink*>(png_get_error_ptr(png));
  std::snprintf(sink->message, sizeof sink->message, "%s", message);
  png_longjmp(png, 1);
}

// Warnings are ancillary-chunk problems libpng recovers from (it drops the chunk); they do not
// make an image unusable.
void on_png_warning(png_structp, png_const_charp) {}

enum class PngDirection { kRead, kWrite };

// libpng's png and info structs for reading or writing, reporting errors to their ErrorSink.
template <PngDirection kDirection>
class PngStructs {
 public:
  PngStructs() {
    if constexpr (kDirection == PngDirection::kWrite)
      png_ = png_create_write_struct(PNG_LIBPNG_VER_STRING, &errors_, on_png_error, on_png_warning);
    else
      png_ = png_create_read_struct(PNG_LIBPNG_VER_STRING, &errors_, on_png_error, on_png_warning);
    if (png_) info_ = png_create_info_struct(png_);
    if (!png_ || !info_) throw std::bad_alloc();
  }
  ~PngStructs() {
    if constexpr (kDirection == PngDirection::kWrite)
      png_destroy_write_struct(&png_, &info_);
    else
      png_destroy_read_struct(&png_, &info_, nullptr);
  }
  PngStructs(const PngStructs&) = delete;
  PngStructs& operator=(const PngStructs&) = delete;

  png_structp png() const { return png_; }
  png_infop info() const { return info_; }
  const char* error() const { return errors_.message; }

 private:
  ErrorSink errors_;
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
};

using PngReader = PngStructs<PngDirection::kRead>;
using PngWriter = PngStructs<PngDirection::kWrite>;

// ---- encoding ----

void append_bytes(png_structp png, png_bytep data, size_t size) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  bool appended = true;
  try {
    out->insert(out->end(), data, data + size);
  } catch (const std::bad_alloc&) {
    appended = false;
  }
  if (!appended) png_error(png, "out of memory");
}

void flush_nothing(png_structp) {}

struct RowsToWrite {
  const uint8_t* pixels;
  size_t stride;
  png_uint_32 width, height;
  int color_type;
};

bool write_png_file(const PngWriter& writer, std::vector<uint8_t>* out, const RowsToWrite& rows,
                    png_textp text, int text_count) {
  png_structp png = writer.png();
  png_infop info = writer.info();
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, append_bytes, flush_nothing);
  png_set_IHDR(png, info, rows.width, rows.height, 8, rows.color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (text_count > 0) png_set_text(png, info, text, text_count);
  png_write_info(png, info);
  for (png_uint_32 y = 0; y < rows.height; ++y)
    png_write_row(png, rows.pixels + static_cast<size_t>(y) * rows.stride);
  png_write_end(png, info);
  return true;
}

void check_keyword(const std::string& keyword) {
  // PNG keywords are Latin-1; printable ASCII keeps them identical in every encoding.
  bool printable =
      std::all_of(keyword.begin(), keyword.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
  if (keyword.empty() || keyword.size() > 79 || !printable || keyword.front() == ' ' ||
      keyword.back() == ' ' || keyword.find("  ") != std::string::npos)
    fail(
        "PNG text keyword \"{}\" is not 1-79 printable ASCII characters without leading, "
        "trailing or doubled spaces",
        keyword);
}

// The code points of a UTF-8 string; invalid UTF-8 (overlong forms, surrogates, truncated
// sequences, values above U+10FFFF) and NUL are errors naming the keyword and byte offset.
std::vector<char32_t> decode_utf8(const std::string& keyword, const std::string& value) {
  std::vector<char32_t> code_points;
  size_t i = 0;
  while (i < value.size()) {
    auto lead = static_cast<unsigned char>(value[i]);
    size_t length = lead < 0x80           ? 1
                    : (lead >> 5) == 0x6  ? 2
                    : (lead >> 4) == 0xe  ? 3
                    : (lead >> 3) == 0x1e ? 4
                                          : 0;
    char32_t cp = length == 1   ? lead
                  : length == 2 ? lead & 0x1f
                  : length == 3 ? lead & 0x0f
                                : lead & 0x07;
    bool valid = length != 0 && i + length <= value.size();
    for (size_t k = 1; valid && k < length; ++k) {
      auto next = static_cast<unsigned char>(value[i + k]);
      valid = (next & 0xc0) == 0x80;
      cp = (cp << 6) | (next & 0x3f);
    }
    constexpr char32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
    valid =
        valid && cp >= kMinForLength[length] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    if (!valid) fail("PNG text \"{}\": invalid UTF-8 at byte {}", keyword, i);
    if (cp == 0) fail("PNG text \"{}\": NUL character at byte {}", keyword, i);
    code_points.push_back(cp);
    i += length;
  }
  return code_points;
}

struct TextChunk {
  std::string keyword;
  std::string value;  // Latin-1 for tEXt, UTF-8 for iTXt
  bool international;
};

TextChunk make_text_chunk(const std::string& keyword, const std::string& utf8_value) {
  check_keyword(keyword);
  std::vector<char32_t> code_points = decode_utf8(keyword, utf8_value);
  bool latin1 =
      std::all_of(code_points.begin(), code_points.end(), [](char32_t c) { return c <= 0xff; });
  if (!latin1) return {keyword, utf8_value, true};
  std::string value(code_points.begin(), code_points.end());
  return {keyword, value, false};
}

// ---- decoding ----

struct ByteSource {
  const uint8_t* data;
  size_t size;
  size_t position;
};

void read_bytes(png_structp png, png_bytep out, size_t size) {
  auto* source = static_cast<ByteSource*>(png_get_io_ptr(png));
  if (size > source->size - source->position) png_error(png, "file is truncated");
  std::memcpy(out, source->data + source->position, size);
  source->position += size;
}

// Largest picture side accepted; beyond any image a diffusion model takes as input.
constexpr png_uint_32 kMaxSide = 32768;

struct PngHeader {
  png_uint_32 width, height;
  int file_bits_per_pixel;  // bit depth times channels, as stored
  int passes;
  int channels, bit_depth;  // after the transformations to RGB8
  size_t row_bytes;
};

bool read_png_header(const PngReader& reader, ByteSource* source, PngHeader* header) {
  png_structp png = reader.png();
  png_infop info = reader.info();
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, source, read_bytes);
  png_set_user_limits(png, kMaxSide, kMaxSide);
  // Caps what libpng allocates for a decompressed ancillary chunk (zTXt, iTXt, iCCP; Ebb uses
  // none of them) at the file's size; a larger one is dropped with a warning.
  png_set_chunk_malloc_max(png, source->size);
  png_read_info(png, info);
  int color_type = png_get_color_type(png, info);
  int bit_depth = png_get_bit_depth(png, info);
  header->width = png_get_image_width(png, info);
  header->height = png_get_image_height(png, info);
  header->file_bits_per_pixel = bit_depth * png_get_channels(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (bit_depth == 16) png_set_scale_16(png);
  // libpng strips after expanding, so this also drops the alpha a palette's tRNS expands to.
  png_set_strip_alpha(png);
  if (!(color_type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
  header->passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  header->channels = png_get_channels(png, info);
  header->bit_depth = png_get_bit_depth(png, info);
  header->row_bytes = png_get_rowbytes(png, info);
  return true;
}

bool read_png_rows(const PngReader& reader, const PngHeader& header, uint8_t* pixels) {
  png_structp png = reader.png();
  if (setjmp(png_jmpbuf(png))) return false;
  for (int pass = 0; pass < header.passes; ++pass)
    for (png_uint_32 y = 0; y < header.height; ++y)
      png_read_row(png, pixels + static_cast<size_t>(y) * header.row_bytes, nullptr);
  png_read_end(png, nullptr);
  return true;
}

// libpng allocates a chunk's claimed length before reading it (a corrupted length only draws a
// warning), so every chunk up to IEND must lie within the file before libpng sees it.
void check_chunk_lengths(std::span<const uint8_t> file, const std::string& name) {
  size_t position = 8;  // after the signature
  while (position + 8 <= file.size()) {
    const uint8_t* p = file.data() + position;
    uint64_t length = uint64_t{p[0]} << 24 | uint64_t{p[1]} << 16 | uint64_t{p[2]} << 8 | p[3];
    std::string type(reinterpret_cast<const char*>(p + 4), 4);
    uint64_t left = file.size() - position - 8;
    if (length + 4 > left)  // data and CRC
      fail(
          "{}: malformed PNG: chunk at byte {} claims {} bytes of data but only {} bytes "
          "follow its header",
          name, position, length, left);
    if (type == "IEND") return;
    position += 12 + length;
  }
  fail("{}: malformed PNG: file is truncated (no IEND chunk)", name);
}

// Deflate expands at most 1032 times; a header claiming more filtered image data than that
// times the whole file's size cannot be honest, so its size is never allocated.
void check_claimed_size(const PngHeader& header, size_t file_size, const std::string& name) {
  // kMaxSide keeps these products far below 2^64.
  uint64_t row = 1 + (uint64_t{header.width} * header.file_bits_per_pixel + 7) / 8;
  uint64_t filtered = row * header.height;
  uint64_t most = checked_mul(file_size, 1032).value_or(UINT64_MAX);
  if (filtered > most)
    fail(
        "{}: PNG header claims {}x{} pixels ({} bytes of image data) but the {}-byte file "
        "could hold at most {}",
        name, header.width, header.height, filtered, file_size, most);
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& image, const PngText& text) {
  if (image.width <= 0 || image.height <= 0)
    fail("encode_png: image size {}x{} is not positive", image.width, image.height);
  if (image.channels != 3 && image.channels != 4)
    fail("encode_png: {} channels (expected 3 for RGB or 4 for RGBA)", image.channels);
  // Two positive ints times 4 stay below 2^64.
  size_t stride = static_cast<size_t>(image.width) * static_cast<size_t>(image.channels);
  uint64_t expected = uint64_t{stride} * static_cast<uint64_t>(image.height);
  if (image.pixels.size() != expected)
    fail("encode_png: a {}x{} image with {} channels needs {} bytes of pixels, got {}", image.width,
         image.height, image.channels, expected, image.pixels.size());

  std::vector<TextChunk> chunks;
  for (const auto& [keyword, value] : text) chunks.push_back(make_text_chunk(keyword, value));
  std::vector<png_text> entries(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    png_text& entry = entries[i];
    std::memset(&entry, 0, sizeof entry);
    entry.compression =
        chunks[i].international ? PNG_ITXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_NONE;
    entry.key = chunks[i].keyword.data();
    entry.text = chunks[i].value.data();
  }

  RowsToWrite rows{image.pixels.data(), stride, static_cast<png_uint_32>(image.width),
                   static_cast<png_uint_32>(image.height),
                   image.channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB};
  std::vector<uint8_t> out;
  PngWriter writer;
  if (!write_png_file(writer, &out, rows, entries.data(), static_cast<int>(entries.size())))
    fail("encode_png: libpng: {}", writer.error());
  return out;
}

Image decode_png(std::span<const uint8_t> file, const std::string& name_for_errors) {
  constexpr size_t kSignatureSize = 8;
  if (file.size() < kSignatureSize || png_sig_cmp(file.data(), 0, kSignatureSize) != 0)
    fail("{}: not a PNG file (no PNG signature in its first 8 bytes)", name_for_errors);

  check_chunk_lengths(file, name_for_errors);
  PngReader reader;
  ByteSource source{file.data(), file.size(), 0};
  PngHeader header{};
  if (!read_png_header(reader, &source, &header))
    fail("{}: malformed PNG: {}", name_for_errors, reader.error());
  check_claimed_size(header, file.size(), name_for_errors);
  if (header.channels != 3 || header.bit_depth != 8 || header.row_bytes != header.width * size_t{3})
    fail("{}: PNG layout not converted to 8-bit RGB ({} channels of {} bits)", name_for_errors,
         header.channels, header.bit_depth);

  Image image;
  image.width = static_cast<int>(header.width);
  image.height = static_cast<int>(header.height);
  image.channels = 3;
  image.pixels.resize(header.row_bytes * header.height);
  if (!read_png_rows(reader, header, image.pixels.data()))
    fail("{}: malformed PNG: {}", name_for_errors, reader.error());
  return image;
}

}  // namespace ebb
