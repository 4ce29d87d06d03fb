#pragma once
// The text cleaning of transformers' Python CLIPTokenizer when ftfy is installed (the setup
// Stable Diffusion users have run): ftfy.fix_text, whitespace runs to one space, trimmed, then
// lower-cased (full Unicode case mapping, as Python's str.lower).
//
// ftfy.fix_text with its default settings is reproduced step by step, line by line, repeating
// the steps until the line no longer changes, as ftfy does:
//  - HTML character references ending in ';', unless a '<' appeared on this line or an
//    earlier one: numeric ones (&#233; &#xE9;) as Python's html.unescape decodes them, and the
//    named entities amp, lt, gt, quot, apos, nbsp (lower or upper case) and a few common
//    typographic ones (see kNamedEntities); ftfy would also decode the other HTML5 names, which
//    are left as they are here;
//  - C1 controls U+0080–U+009F read as Windows-1252; Latin ligatures (ﬁ → fi) split;
//    full-width and half-width forms and U+3000 to their usual width; curly quotes
//    straightened; CR, CRLF, U+0085, U+2028, U+2029 to LF; ANSI terminal escapes and
//    invisible control characters removed; NFC normalisation.
// Not reproduced: ftfy's mojibake repair (fix_encoding), which guesses that text was decoded
// with the wrong codec ("cafÃ©" → "café"); such text is tokenized as written.
#include <string>
#include <string_view>

namespace ebb {

// `utf8` must be valid UTF-8 (an ebb::Error otherwise). Returns cleaned UTF-8 text.
std::string clean_clip_text(std::string_view utf8);

}  // namespace ebb
