#include "pipeline/unicode_text.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include "core/error.h"

namespace ebb {

std::u32string decode_utf8(std::string_view utf8, std::string_view what) {
  std::u32string out;
  out.reserve(utf8.size());
  const auto* bytes = reinterpret_cast<const uint8_t*>(utf8.data());
  const auto length = static_cast<int32_t>(utf8.size());
  if (utf8.size() != static_cast<size_t>(length))
    fail("{} is too long ({} bytes)", what, utf8.size());
  int32_t i = 0;
  while (i < length) {
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    if (c < 0) fail("{} is not valid UTF-8: bad byte sequence at byte offset {}", what, start);
    out.push_back(static_cast<char32_t>(c));
  }
  return out;
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    uint8_t buffer[U8_MAX_LENGTH];
    int32_t n = 0;
    UBool error = false;
    U8_APPEND(buffer, n, U8_MAX_LENGTH, static_cast<UChar32>(c), error);
    if (error)
      fail("internal: code point U+{:X} cannot be encoded as UTF-8", static_cast<uint32_t>(c));
    out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(n));
  }
  return out;
}

bool is_letter(char32_t c) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0;
}

bool is_number(char32_t c) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0;
}

bool is_white_space(char32_t c) {
  return u_isUWhiteSpace(static_cast<UChar32>(c));
}

bool is_decimal_digit(char32_t c) {
  return u_charType(static_cast<UChar32>(c)) == U_DECIMAL_DIGIT_NUMBER;
}

bool is_word_char(char32_t c) {
  return c == U'_' || is_letter(c) || is_number(c);
}

}  // namespace ebb
