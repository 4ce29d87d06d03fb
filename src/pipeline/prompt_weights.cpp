#include "pipeline/prompt_weights.h"

#include <unicode/uchar.h>

#include <charconv>

#include "core/error.h"
#include "pipeline/unicode_text.h"

namespace ebb {
namespace {

constexpr double kRoundMultiplier = 1.1;
constexpr double kSquareMultiplier = 1 / 1.1;

struct Segment {
  std::u32string text;
  double weight = 1.0;
  bool is_break = false;
};

struct OpenBracket {
  size_t first_segment;
  size_t position;  // 0-based character index in the prompt
};

// Python's re \s on str: White_Space plus the separators U+001C–U+001F.
bool is_python_space(char32_t c) {
  return is_white_space(c) || (c >= 0x1C && c <= 0x1F);
}

bool is_weight_char(char32_t c) {
  return c == U'.' || is_decimal_digit(c);
}

// Appends a run of plain text, split at BREAK the way A1111's \s*\bBREAK\b\s* does (the
// spaces around a BREAK go with it).
void append_text(std::u32string_view text, std::vector<Segment>& out) {
  constexpr std::u32string_view kBreak = U"BREAK";
  size_t part_start = 0;
  size_t search = 0;
  while (true) {
    const size_t at = text.find(kBreak, search);
    if (at == std::u32string_view::npos) break;
    const size_t after = at + kBreak.size();
    const bool word_start = at == 0 || !is_word_char(text[at - 1]);
    const bool word_end = after == text.size() || !is_word_char(text[after]);
    if (!word_start || !word_end) {
      search = at + 1;
      continue;
    }
    size_t match_start = at;
    while (match_start > part_start && is_python_space(text[match_start - 1])) --match_start;
    size_t match_end = after;
    while (match_end < text.size() && is_python_space(text[match_end])) ++match_end;
    out.push_back({std::u32string(text.substr(part_start, match_start - part_start))});
    out.push_back({U"", 1.0, true});
    part_start = search = match_end;
  }
  out.push_back({std::u32string(text.substr(part_start))});
}

void multiply_from(std::vector<Segment>& segments, size_t first, double multiplier) {
  for (size_t i = first; i < segments.size(); ++i) {
    if (!segments[i].is_break) segments[i].weight *= multiplier;
  }
}

// The number in "(text:NUMBER)": Python's float() of [+-]?[.\d]+, \d any decimal digit.
double parse_weight(std::u32string_view number, size_t position) {
  std::string ascii;
  for (char32_t c : number) {
    if (is_decimal_digit(c)) {
      ascii.push_back(static_cast<char>('0' + u_charDigitValue(static_cast<UChar32>(c))));
    } else {
      ascii.push_back(static_cast<char>(c));
    }
  }
  const bool negative = !ascii.empty() && ascii[0] == '-';
  const size_t skip = !ascii.empty() && (ascii[0] == '-' || ascii[0] == '+') ? 1 : 0;
  double value = 0;
  const char* begin = ascii.data() + skip;
  const char* end = ascii.data() + ascii.size();
  const auto [stop, error] = std::from_chars(begin, end, value, std::chars_format::fixed);
  if (error != std::errc() || stop != end) {
    fail("invalid weight '{}' at character {} of the prompt: write a number, as in (word:1.2)",
         encode_utf8(number), position + 1);
  }
  return negative ? -value : value;
}

[[noreturn]] void fail_unclosed(char32_t bracket, size_t position) {
  const char open = static_cast<char>(bracket);
  const char close = open == '(' ? ')' : ']';
  fail(
      "unbalanced '{}' at character {} of the prompt: it is never closed. Close it with '{}', "
      "or write \\{} for a literal '{}'",
      open, position + 1, close, open, open);
}

[[noreturn]] void fail_unopened(char32_t bracket, size_t position) {
  const char close = static_cast<char>(bracket);
  const char open = close == ')' ? '(' : '[';
  fail(
      "unbalanced '{}' at character {} of the prompt: there is no '{}' before it to close. "
      "Remove it, or write \\{} for a literal '{}'",
      close, position + 1, open, close, close);
}

// Length of A1111's weight token ":[+-]?[.\d]+)" at text[i], or 0.
size_t weight_token_length(std::u32string_view text, size_t i) {
  if (text[i] != U':') return 0;
  size_t j = i + 1;
  if (j < text.size() && (text[j] == U'+' || text[j] == U'-')) ++j;
  const size_t digits = j;
  while (j < text.size() && is_weight_char(text[j])) ++j;
  if (j == digits || j >= text.size() || text[j] != U')') return 0;
  return j + 1 - i;
}

bool is_special(char32_t c) {
  return c == U'\\' || c == U'(' || c == U')' || c == U'[' || c == U']' || c == U':';
}

}  // namespace

std::vector<PromptSegment> parse_prompt_weights(std::string_view prompt) {
  const std::u32string text = decode_utf8(prompt, "the prompt");
  std::vector<Segment> segments;
  std::vector<OpenBracket> round, square;
  size_t i = 0;
  while (i < text.size()) {
    const char32_t c = text[i];
    if (c == U'\\') {
      const bool escapes = i + 1 < text.size() &&
                           (text[i + 1] == U'(' || text[i + 1] == U')' || text[i + 1] == U'[' ||
                            text[i + 1] == U']' || text[i + 1] == U'\\');
      segments.push_back({escapes ? std::u32string(1, text[i + 1]) : U""});
      i += escapes ? 2 : 1;
    } else if (c == U'(') {
      round.push_back({segments.size(), i});
      ++i;
    } else if (c == U'[') {
      square.push_back({segments.size(), i});
      ++i;
    } else if (const size_t length = weight_token_length(text, i); length > 0) {
      if (round.empty()) fail_unopened(U')', i + length - 1);
      const double weight = parse_weight(text.substr(i + 1, length - 2), i + 1);
      multiply_from(segments, round.back().first_segment, weight);
      round.pop_back();
      i += length;
    } else if (c == U')') {
      if (round.empty()) fail_unopened(c, i);
      multiply_from(segments, round.back().first_segment, kRoundMultiplier);
      round.pop_back();
      ++i;
    } else if (c == U']') {
      if (square.empty()) fail_unopened(c, i);
      multiply_from(segments, square.back().first_segment, kSquareMultiplier);
      square.pop_back();
      ++i;
    } else {
      size_t end = i + 1;  // a lone ':' is text of its own
      if (c != U':') {
        while (end < text.size() && !is_special(text[end])) ++end;
      }
      append_text(std::u32string_view(text).substr(i, end - i), segments);
      i = end;
    }
  }
  if (!round.empty() || !square.empty()) {
    const bool round_first =
        !round.empty() && (square.empty() || round.front().position < square.front().position);
    if (round_first) fail_unclosed(U'(', round.front().position);
    fail_unclosed(U'[', square.front().position);
  }

  std::vector<PromptSegment> out;
  for (const Segment& s : segments) {
    const bool joins =
        !out.empty() && !s.is_break && !out.back().is_break && out.back().weight == s.weight;
    if (joins) {
      out.back().text += encode_utf8(s.text);
    } else {
      out.push_back({encode_utf8(s.text), s.is_break ? 1.0 : s.weight, s.is_break});
    }
  }
  if (out.empty()) out.push_back({});
  return out;
}

}  // namespace ebb
