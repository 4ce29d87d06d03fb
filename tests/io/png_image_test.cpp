#include "io/png_image.h"

#include <gtest/gtest.h>
#include <png.h>

#include <cmath>
#include <csetjmp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace ebb {
namespace {

Image random_image(int width, int height, int channels, uint32_t seed) {
  std::mt19937 rng(seed);
  Image image{width, height, channels, {}};
  image.pixels.resize(static_cast<size_t>(width) * height * channels);
  for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(rng());
  return image;
}

std::vector<uint8_t> rgb_of(const Image& image) {
  std::vector<uint8_t> rgb;
  for (size_t i = 0; i < image.pixels.size(); i += image.channels)
    rgb.insert(rgb.end(), image.pixels.begin() + i, image.pixels.begin() + i + 3);
  return rgb;
}

// ---- an independent libpng writer and text reader, to check the encoder and decoder against ----

[[noreturn]] void jump_on_error(png_structp png, png_const_charp) {
  png_longjmp(png, 1);
}

void append(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void no_flush(png_structp) {}

// A PNG in the file's own layout: rows packed at bit_depth, as libpng writes them.
struct RawPng {
  png_uint_32 width, height;
  int bit_depth, color_type, interlace;
  std::vector<png_color> palette;
  std::vector<png_byte> palette_alpha;  // tRNS for palette images
  std::vector<uint8_t> rows;            // height rows of row_bytes()
  size_t row_bytes() const {
    int channels = color_type == PNG_COLOR_TYPE_PALETTE      ? 1
                   : color_type == PNG_COLOR_TYPE_GRAY       ? 1
                   : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                   : color_type == PNG_COLOR_TYPE_RGB        ? 3
                                                             : 4;
    return (static_cast<size_t>(width) * channels * bit_depth + 7) / 8;
  }
};

bool write_raw(png_structp png, png_infop info, const RawPng& raw, std::vector<png_bytep>& rows,
               std::vector<uint8_t>* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, append, no_flush);
  png_set_IHDR(png, info, raw.width, raw.height, raw.bit_depth, raw.color_type, raw.interlace,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!raw.palette.empty())
    png_set_PLTE(png, info, raw.palette.data(), static_cast<int>(raw.palette.size()));
  if (!raw.palette_alpha.empty())
    png_set_tRNS(png, info, raw.palette_alpha.data(), static_cast<int>(raw.palette_alpha.size()),
                 nullptr);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, info);
  return true;
}

std::vector<uint8_t> encode_raw(RawPng raw) {
  std::vector<png_bytep> rows(raw.height);
  for (png_uint_32 y = 0; y < raw.height; ++y) rows[y] = raw.rows.data() + y * raw.row_bytes();
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, jump_on_error, nullptr);
  png_infop info = png_create_info_struct(png);
  std::vector<uint8_t> out;
  bool ok = write_raw(png, info, raw, rows, &out);
  png_destroy_write_struct(&png, &info);
  EXPECT_TRUE(ok);
  return out;
}

struct ReadBack {
  std::string keyword, text;
  int compression;
};

struct Cursor {
  const std::vector<uint8_t>* file;
  size_t position;
};

void read_from(png_structp png, png_bytep out, size_t n) {
  auto* c = static_cast<Cursor*>(png_get_io_ptr(png));
  if (n > c->file->size() - c->position) png_error(png, "truncated");
  std::memcpy(out, c->file->data() + c->position, n);
  c->position += n;
}

bool read_all(png_structp png, png_infop info, Cursor* cursor) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, cursor, read_from);
  png_read_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  return true;
}

std::vector<ReadBack> read_text_chunks(const std::vector<uint8_t>& file) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, jump_on_error, nullptr);
  png_infop info = png_create_info_struct(png);
  Cursor cursor{&file, 0};
  std::vector<ReadBack> chunks;
  if (read_all(png, info, &cursor)) {
    png_textp text = nullptr;
    int count = png_get_text(png, info, &text, nullptr);
    for (int i = 0; i < count; ++i) {
      size_t length = text[i].compression > 0 ? text[i].itxt_length : text[i].text_length;
      chunks.push_back({text[i].key, std::string(text[i].text, length), text[i].compression});
    }
  } else {
    ADD_FAILURE() << "libpng could not read the encoded file back";
  }
  png_destroy_read_struct(&png, &info, nullptr);
  return chunks;
}

// ---- encoding ----

TEST(PngImage, RgbRoundTrip) {
  Image image = random_image(37, 23, 3, 1);
  Image back = decode_png(encode_png(image), "rgb.png");
  EXPECT_EQ(back.width, 37);
  EXPECT_EQ(back.height, 23);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels, image.pixels);
}

TEST(PngImage, RgbaRoundTripKeepsColourDropsAlpha) {
  Image image = random_image(16, 9, 4, 2);
  std::vector<uint8_t> file = encode_png(image);
  Image back = decode_png(file, "rgba.png");
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels, rgb_of(image));
}

TEST(PngImage, LatinTextIsTextChunkInLatin1) {
  Image image = random_image(4, 4, 3, 3);
  std::string value = "a caf\xc3\xa9 on a table\nSteps: 20, Seed: 42";  // é in UTF-8
  std::vector<ReadBack> chunks = read_text_chunks(encode_png(image, {{"parameters", value}}));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].keyword, "parameters");
  EXPECT_EQ(chunks[0].compression, PNG_TEXT_COMPRESSION_NONE);  // tEXt
  EXPECT_EQ(chunks[0].text, "a caf\xe9 on a table\nSteps: 20, Seed: 42");
}

TEST(PngImage, Utf8PromptSurvivesAsInternationalText) {
  Image image = random_image(4, 4, 3, 4);
  std::string prompt = "\xe7\x8c\xab, a cat \xf0\x9f\x90\x88 caf\xc3\xa9";  // 猫 🐈 é
  std::vector<ReadBack> chunks =
      read_text_chunks(encode_png(image, {{"parameters", prompt}, {"Software", "Ebb"}}));
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].keyword, "parameters");
  EXPECT_EQ(chunks[0].compression, PNG_ITXT_COMPRESSION_NONE);  // iTXt, uncompressed
  EXPECT_EQ(chunks[0].text, prompt);
  EXPECT_EQ(chunks[1].keyword, "Software");
  EXPECT_EQ(chunks[1].text, "Ebb");
}

TEST(PngImage, EncodeRejectsBadInput) {
  Image image = random_image(4, 4, 3, 5);
  Image short_pixels = image;
  short_pixels.pixels.pop_back();
  EXPECT_THROW(encode_png(short_pixels), Error);
  Image two_channels{4, 4, 2, std::vector<uint8_t>(32)};
  EXPECT_THROW(encode_png(two_channels), Error);
  EXPECT_THROW(encode_png(Image{0, 4, 3, {}}), Error);
  std::vector<std::string> bad_keywords = {
      "", " lead", "trail ", "two  spaces", std::string(80, 'k'), "caf\xc3\xa9", "tab\tkey"};
  for (const std::string& keyword : bad_keywords)
    EXPECT_THROW(encode_png(image, {{keyword, "v"}}), Error) << keyword;
  std::vector<std::string> bad_values = {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                         std::string("a\0b", 3)};
  for (const std::string& value : bad_values)
    EXPECT_THROW(encode_png(image, {{"parameters", value}}), Error);
  try {
    encode_png(image, {{"parameters", "ok \xff"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"parameters\": invalid UTF-8 at byte 3"),
              std::string::npos)
        << e.what();
  }
}

// ---- decoding every colour type and bit depth ----

uint8_t scale_to_8(unsigned value, int bit_depth) {
  unsigned top = (1u << bit_depth) - 1;
  return static_cast<uint8_t>(std::lround(value * 255.0 / top));
}

// Draws random samples for a raw image and the RGB8 picture decode_png should make of it.
struct Case {
  RawPng raw;
  std::vector<uint8_t> expected;
};

Case random_case(int color_type, int bit_depth, int interlace, uint32_t seed) {
  std::mt19937 rng(seed);
  Case c{{13, 7, bit_depth, color_type, interlace, {}, {}, {}}, {}};
  RawPng& raw = c.raw;
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    raw.palette.resize(1u << bit_depth);
    for (png_color& colour : raw.palette)
      colour = {static_cast<png_byte>(rng()), static_cast<png_byte>(rng()),
                static_cast<png_byte>(rng())};
    raw.palette_alpha = {0, 128};
  }
  int samples = color_type == PNG_COLOR_TYPE_GRAY         ? 1
                : color_type == PNG_COLOR_TYPE_PALETTE    ? 1
                : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                : color_type == PNG_COLOR_TYPE_RGB        ? 3
                                                          : 4;
  raw.rows.assign(raw.row_bytes() * raw.height, 0);
  unsigned top = (1u << bit_depth) - 1;
  for (png_uint_32 y = 0; y < raw.height; ++y) {
    uint8_t* row = raw.rows.data() + y * raw.row_bytes();
    for (png_uint_32 x = 0; x < raw.width; ++x) {
      std::vector<unsigned> sample(samples);
      for (int s = 0; s < samples; ++s) {
        sample[s] = rng() & top;
        size_t index = static_cast<size_t>(x) * samples + s;
        if (bit_depth == 16) {
          row[2 * index] = static_cast<uint8_t>(sample[s] >> 8);
          row[2 * index + 1] = static_cast<uint8_t>(sample[s]);
        } else if (bit_depth == 8) {
          row[index] = static_cast<uint8_t>(sample[s]);
        } else {
          size_t bit = index * bit_depth;
          row[bit / 8] |= static_cast<uint8_t>(sample[s] << (8 - bit_depth - bit % 8));
        }
      }
      if (color_type == PNG_COLOR_TYPE_PALETTE) {
        const png_color& colour = raw.palette[sample[0]];
        c.expected.insert(c.expected.end(), {colour.red, colour.green, colour.blue});
      } else if (samples <= 2) {
        uint8_t g = scale_to_8(sample[0], bit_depth);
        c.expected.insert(c.expected.end(), {g, g, g});
      } else {
        for (int s = 0; s < 3; ++s) c.expected.push_back(scale_to_8(sample[s], bit_depth));
      }
    }
  }
  return c;
}

TEST(PngImage, DecodesEveryColourTypeAndDepthToRgb8) {
  struct Format {
    int color_type;
    std::vector<int> depths;
  };
  std::vector<Format> formats = {{PNG_COLOR_TYPE_GRAY, {1, 2, 4, 8, 16}},
                                 {PNG_COLOR_TYPE_PALETTE, {1, 2, 4, 8}},
                                 {PNG_COLOR_TYPE_GRAY_ALPHA, {8, 16}},
                                 {PNG_COLOR_TYPE_RGB, {8, 16}},
                                 {PNG_COLOR_TYPE_RGB_ALPHA, {8, 16}}};
  uint32_t seed = 100;
  for (const Format& format : formats)
    for (int depth : format.depths)
      for (int interlace : {PNG_INTERLACE_NONE, PNG_INTERLACE_ADAM7}) {
        Case c = random_case(format.color_type, depth, interlace, ++seed);
        Image image = decode_png(encode_raw(c.raw), "case.png");
        SCOPED_TRACE(testing::Message() << "colour type " << format.color_type << ", depth "
                                        << depth << ", interlace " << interlace);
        EXPECT_EQ(image.width, 13);
        EXPECT_EQ(image.height, 7);
        EXPECT_EQ(image.channels, 3);
        EXPECT_EQ(image.pixels, c.expected);
      }
}

// ---- malformed input: one ebb::Error naming the file, never a crash ----

std::string error_of(const std::vector<uint8_t>& file) {
  try {
    decode_png(file, "input/bad.png");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PngImage, NotAPngNamesTheFile) {
  std::string message = error_of({'G', 'I', 'F', '8', '9', 'a', 0, 0, 0, 0});
  EXPECT_NE(message.find("input/bad.png: not a PNG file"), std::string::npos) << message;
  EXPECT_NE(error_of({}).find("input/bad.png"), std::string::npos);
}

TEST(PngImage, EveryTruncationIsAnError) {
  std::vector<uint8_t> file = encode_png(random_image(9, 5, 3, 6), {{"parameters", "p"}});
  for (size_t size = 0; size < file.size(); ++size) {
    std::vector<uint8_t> part(file.begin(), file.begin() + size);
    std::string message = error_of(part);
    EXPECT_NE(message.find("input/bad.png"), std::string::npos) << "size " << size;
  }
}

TEST(PngImage, RandomCorruptionDecodesOrFails) {
  std::vector<uint8_t> file = encode_png(random_image(20, 20, 4, 7), {{"parameters", "p"}});
  std::mt19937 rng(8);
  int failures = 0;
  for (int trial = 0; trial < 600; ++trial) {
    std::vector<uint8_t> bad = file;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f)
      bad[8 + rng() % (bad.size() - 8)] ^= static_cast<uint8_t>(1 + rng() % 255);
    try {
      Image image = decode_png(bad, "input/bad.png");
      EXPECT_EQ(image.pixels.size(), static_cast<size_t>(image.width) * image.height * 3);
    } catch (const Error& e) {
      ++failures;
      EXPECT_NE(std::string(e.what()).find("input/bad.png"), std::string::npos);
    }
  }
  EXPECT_GT(failures, 300);  // CRCs catch most flips
}

TEST(PngImage, ChunkLengthBeyondTheFileIsRefused) {
  std::vector<uint8_t> file = encode_png(random_image(8, 8, 3, 10), {{"parameters", "p"}});
  file[33] = 0x2c;  // the high byte of the tEXt chunk's length (it follows the 33-byte IHDR)
  std::string message = error_of(file);
  EXPECT_NE(message.find("input/bad.png: malformed PNG: chunk at byte 33 claims 738197516 bytes"),
            std::string::npos)
      << message;
}

uint32_t crc_of(const uint8_t* data, size_t size) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

void put_be32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

TEST(PngImage, HugeClaimedSizeIsRefusedBeforeAllocating) {
  std::vector<uint8_t> file = encode_png(random_image(8, 8, 3, 9));
  // IHDR data starts at byte 16 (signature, length, type); its CRC follows its 13 bytes.
  put_be32(&file[16], 30000);
  put_be32(&file[20], 30000);
  put_be32(&file[29], crc_of(&file[12], 17));
  std::string message = error_of(file);
  EXPECT_NE(message.find("input/bad.png: PNG header claims 30000x30000 pixels"), std::string::npos)
      << message;

  put_be32(&file[16], 40000);
  put_be32(&file[29], crc_of(&file[12], 17));
  message = error_of(file);
  EXPECT_NE(message.find("input/bad.png: malformed PNG"), std::string::npos) << message;
}

}  // namespace
}  // namespace ebb
