#include "pipeline/clip_text_cleaning.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <utility>

#include "core/error.h"
#include "pipeline/unicode_text.h"

namespace ebb {
namespace {

// Windows-1252 for 0x80–0x9F; the five undefined bytes stay themselves (ftfy's "sloppy"
// codec, and Python's html.unescape for &#128;–&#159;).
constexpr std::array<char32_t, 32> kCp1252High = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

struct NamedEntity {
  std::u32string_view name;  // lower case; the all-upper-case spelling decodes the same
  char32_t value;
};

constexpr std::array<NamedEntity, 22> kNamedEntities = {{
    {U"amp", U'&'},      {U"lt", U'<'},      {U"gt", U'>'},       {U"quot", U'"'},
    {U"apos", U'\''},    {U"nbsp", 0x00A0},  {U"hellip", 0x2026}, {U"mdash", 0x2014},
    {U"ndash", 0x2013},  {U"lsquo", 0x2018}, {U"rsquo", 0x2019},  {U"ldquo", 0x201C},
    {U"rdquo", 0x201D},  {U"laquo", 0x00AB}, {U"raquo", 0x00BB},  {U"times", 0x00D7},
    {U"deg", 0x00B0},    {U"copy", 0x00A9},  {U"reg", 0x00AE},    {U"trade", 0x2122},
    {U"middot", 0x00B7}, {U"bull", 0x2022},
}};

struct Ligature {
  char32_t from;
  std::u32string_view to;
};

// ftfy's fix_latin_ligatures table.
constexpr std::array<Ligature, 22> kLigatures = {{
    {0x0132, U"IJ"},      {0x0133, U"ij"}, {0x0149, U"\u02BCn"}, {0x01F1, U"DZ"},
    {0x01F2, U"Dz"},      {0x01F3, U"dz"}, {0x01C4, U"D\u017D"}, {0x01C5, U"D\u017E"},
    {0x01C6, U"d\u017E"}, {0x01C7, U"LJ"}, {0x01C8, U"Lj"},      {0x01C9, U"lj"},
    {0x01CA, U"NJ"},      {0x01CB, U"Nj"}, {0x01CC, U"nj"},      {0xFB00, U"ff"},
    {0xFB01, U"fi"},      {0xFB02, U"fl"}, {0xFB03, U"ffi"},     {0xFB04, U"ffl"},
    {0xFB05, U"\u017Ft"}, {0xFB06, U"st"},
}};

bool is_ascii_letter(char32_t c) {
  return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
}

bool is_ascii_alnum(char32_t c) {
  return is_ascii_letter(c) || (c >= U'0' && c <= U'9');
}

std::optional<int> hex_value(char32_t c) {
  if (c >= U'0' && c <= U'9') return static_cast<int>(c - U'0');
  if (c >= U'a' && c <= U'f') return static_cast<int>(c - U'a' + 10);
  if (c >= U'A' && c <= U'F') return static_cast<int>(c - U'A' + 10);
  return std::nullopt;
}

// Python's html.unescape on a whole "&#...;" reference. nullopt: it would not consume the
// whole reference (not all digits), so ftfy keeps the text. May return an empty string.
std::optional<std::u32string> decode_numeric_reference(std::u32string_view body) {
  int base = 10;
  if (!body.empty() && (body[0] == U'x' || body[0] == U'X')) {
    base = 16;
    body.remove_prefix(1);
  }
  if (body.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char32_t c : body) {
    const std::optional<int> digit = hex_value(c);
    if (!digit || *digit >= base) return std::nullopt;
    value = std::min<uint64_t>(value * base + *digit, 0x110000);  // saturate: all invalid alike
  }
  if (value == 0) return U"\uFFFD";
  if (value == 0x0D) return U"\r";
  if (value >= 0x80 && value <= 0x9F) return std::u32string(1, kCp1252High[value - 0x80]);
  if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) return U"\uFFFD";
  const bool invalid = (value <= 0x08) || value == 0x0B || (value >= 0x0E && value <= 0x1F) ||
                       value == 0x7F || (value >= 0xFDD0 && value <= 0xFDEF) ||
                       (value & 0xFFFE) == 0xFFFE;
  if (invalid) return U"";
  return std::u32string(1, static_cast<char32_t>(value));
}

// Named references in all lower or all upper case (ftfy decodes both spellings alike).
std::optional<char32_t> decode_named_reference(std::u32string_view name) {
  const bool all_upper = std::all_of(name.begin(), name.end(), [](char32_t c) { return c < U'a'; });
  std::u32string lower(name);
  if (all_upper) {
    for (char32_t& c : lower) c = (c >= U'A' && c <= U'Z') ? c + (U'a' - U'A') : c;
  }
  for (const NamedEntity& entity : kNamedEntities) {
    if (entity.name == lower) return entity.value;
  }
  return std::nullopt;
}

// ftfy's unescape_html: references matching &#?[0-9A-Za-z]{1,24};
std::u32string unescape_html(std::u32string_view text) {
  std::u32string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == U'&') {
      size_t j = i + 1;
      const bool numeric = j < text.size() && text[j] == U'#';
      if (numeric) ++j;
      const size_t body_start = j;
      while (j < text.size() && j - body_start < 24 && is_ascii_alnum(text[j])) ++j;
      if (j > body_start && j < text.size() && text[j] == U';') {
        const std::u32string_view body = text.substr(body_start, j - body_start);
        if (numeric) {
          if (std::optional<std::u32string> decoded = decode_numeric_reference(body)) {
            out += *decoded;
            i = j + 1;
            continue;
          }
        } else if (std::optional<char32_t> decoded = decode_named_reference(body)) {
          out.push_back(*decoded);
          i = j + 1;
          continue;
        }
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

icu::UnicodeString to_icu(std::u32string_view text) {
  return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(text.data()),
                                       static_cast<int32_t>(text.size()));
}

std::u32string from_icu(const icu::UnicodeString& text) {
  std::u32string out(static_cast<size_t>(text.countChar32()), U'\0');
  UErrorCode status = U_ZERO_ERROR;
  text.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), status);
  if (U_FAILURE(status)) fail("ICU text conversion failed: {}", u_errorName(status));
  return out;
}

// `instance` is icu::Normalizer2::getNFCInstance or getNFKCInstance.
std::u32string normalize(const icu::Normalizer2* (*instance)(UErrorCode&),
                         std::u32string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = instance(status);
  if (U_FAILURE(status)) fail("ICU normalisation data is unavailable: {}", u_errorName(status));
  const icu::UnicodeString normalized = normalizer->normalize(to_icu(text), status);
  if (U_FAILURE(status)) fail("ICU normalisation failed: {}", u_errorName(status));
  return from_icu(normalized);
}

std::u32string fix_c1_controls(std::u32string_view text) {
  std::u32string out(text);
  for (char32_t& c : out) {
    if (c >= 0x80 && c <= 0x9F) c = kCp1252High[c - 0x80];
  }
  return out;
}

std::u32string fix_latin_ligatures(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    const auto ligature = std::find_if(kLigatures.begin(), kLigatures.end(),
                                       [c](const Ligature& l) { return l.from == c; });
    if (ligature != kLigatures.end()) {
      out += ligature->to;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Full-width and half-width forms to their NFKC equivalents; U+3000 to a space.
std::u32string fix_character_width(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0x3000) {
      out.push_back(U' ');
    } else if (c >= 0xFF01 && c <= 0xFFEF) {
      out += normalize(icu::Normalizer2::getNFKCInstance, std::u32string(1, c));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string uncurl_quotes(std::u32string_view text) {
  std::u32string out(text);
  for (char32_t& c : out) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
  return out;
}

std::u32string fix_line_breaks(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == U'\r' && i + 1 < text.size() && text[i + 1] == U'\n') continue;
    const bool line_break = c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x0085;
    out.push_back(line_break ? U'\n' : c);
  }
  return out;
}

bool is_unwanted_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// ANSI terminal escapes ESC '[' (digits | ';')* letter, then invisible control characters.
std::u32string remove_escapes_and_controls(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == 0x1B && i + 1 < text.size() && text[i + 1] == U'[') {
      size_t j = i + 2;
      while (j < text.size() && (text[j] == U';' || is_decimal_digit(text[j]))) ++j;
      if (j < text.size() && is_ascii_letter(text[j])) {
        i = j + 1;
        continue;
      }
    }
    if (!is_unwanted_control(text[i])) out.push_back(text[i]);
    ++i;
  }
  return out;
}

std::u32string fix_line(std::u32string line, bool unescape) {
  while (true) {
    std::u32string fixed = unescape ? unescape_html(line) : line;
    fixed = uncurl_quotes(fix_character_width(fix_latin_ligatures(fix_c1_controls(fixed))));
    fixed = fix_line_breaks(fixed);
    fixed = remove_escapes_and_controls(fixed);
    fixed = normalize(icu::Normalizer2::getNFCInstance, fixed);
    if (fixed == line) return fixed;
    line = std::move(fixed);
  }
}

// ftfy.fix_text: lines (each with its '\n') fixed one by one; HTML unescaping stops for good
// at the first line containing '<'.
std::u32string fix_text(std::u32string_view text) {
  std::u32string out;
  bool unescape = true;
  size_t start = 0;
  while (start < text.size()) {
    const size_t newline = text.find(U'\n', start);
    const size_t end = newline == std::u32string_view::npos ? text.size() : newline + 1;
    const std::u32string_view line = text.substr(start, end - start);
    if (line.find(U'<') != std::u32string_view::npos) unescape = false;
    out += fix_line(std::u32string(line), unescape);
    start = end;
  }
  return out;
}

std::u32string collapse_white_space(std::u32string_view text) {
  std::u32string out;
  bool pending_space = false;
  for (char32_t c : text) {
    if (is_white_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(U' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string to_lower_utf8(std::u32string_view text) {
  icu::UnicodeString s = to_icu(text);
  s.toLower(icu::Locale::getRoot());
  std::string out;
  s.toUTF8String(out);
  return out;
}

}  // namespace

std::string clean_clip_text(std::string_view utf8) {
  const std::u32string text = decode_utf8(utf8, "the prompt");
  return to_lower_utf8(collapse_white_space(fix_text(text)));
}

}  // namespace ebb
