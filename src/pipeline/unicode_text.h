#pragma once
// Code points and the Unicode character classes the prompt parser and the CLIP tokenizer test,
// with ICU's character database (Python's regex and str methods, which the reference
// implementations use, test the same Unicode properties).
#include <string>
#include <string_view>

namespace ebb {

// Decodes UTF-8; malformed input is an ebb::Error naming the byte offset. `what` names the
// text in the message ("the prompt").
std::u32string decode_utf8(std::string_view utf8, std::string_view what);
std::string encode_utf8(std::u32string_view text);

bool is_letter(char32_t c);         // general category L*  (regex \p{L})
bool is_number(char32_t c);         // general category N*  (regex \p{N})
bool is_white_space(char32_t c);    // property White_Space (regex module \s)
bool is_decimal_digit(char32_t c);  // general category Nd (Python \d)
// Python's re \w on str: letters, numbers and '_'.
bool is_word_char(char32_t c);

}  // namespace ebb
