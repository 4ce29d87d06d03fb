#include "io/utf8_text.h"

#include <fmt/format.h>

#include <cstdint>

namespace ebb {

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t tail;
    uint32_t code;
    uint32_t smallest;  // anything below is an overlong encoding
    if ((lead & 0xE0) == 0xC0) {
      tail = 1, code = lead & 0x1F, smallest = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      tail = 2, code = lead & 0x0F, smallest = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      tail = 3, code = lead & 0x07, smallest = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i - 1 < tail) return false;
    for (size_t k = 1; k <= tail; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      code = (code << 6) | (c & 0x3F);
    }
    if (code < smallest || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += tail + 1;
  }
  return true;
}

std::string printable_name(std::string_view s) {
  constexpr size_t kMaxShown = 96;
  bool utf8 = is_valid_utf8(s);
  std::string_view shown = s.substr(0, kMaxShown);
  // Cut valid UTF-8 on a character boundary.
  while (utf8 && !shown.empty() && shown.size() < s.size() &&
         (static_cast<unsigned char>(s[shown.size()]) & 0xC0) == 0x80)
    shown.remove_suffix(1);
  std::string out;
  for (char ch : shown) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F || (!utf8 && c >= 0x80))
      out += fmt::format("\\x{:02x}", c);
    else
      out += ch;
  }
  if (shown.size() < s.size()) out += "...";
  return out;
}

}  // namespace ebb
