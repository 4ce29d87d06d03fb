#pragma once
// AUTOMATIC1111's emphasis syntax, parsed into weighted text segments:
//   (text)       weight × 1.1            ((text)) × 1.21, and so on when nested
//   [text]       weight × (1 / 1.1)
//   (text:1.5)   weight × 1.5            (any number: 0.5, .5, 2., -1; nests like the others)
//   \( \) \[ \]  literal brackets; \\ a literal backslash; a backslash before anything else
//                is dropped, as A1111 does ("a\b" reads "ab")
//   BREAK        (upper case, a separate word) ends the current 75-token chunk
// Weights multiply in double precision in A1111's order (innermost bracket first), and
// neighbouring segments of equal weight are joined, so the text and weights are A1111's.
//
// Where Ebb differs from A1111 on purpose:
//  - an opening bracket that is never closed, or a closing one with nothing to close (of its
//    kind), is an ebb::Error naming the character position; A1111 silently closes at the end
//    of the prompt or keeps the stray bracket as text;
//  - a malformed weight such as "(a:1.2.3)" is an ebb::Error (A1111 raises ValueError);
//  - BREAK inside brackets is still a break; A1111 keeps it as the word "break" there, with a
//    negative weight.
#include <string>
#include <string_view>
#include <vector>

namespace ebb {

struct PromptSegment {
  std::string text;  // UTF-8, brackets and escapes resolved
  double weight = 1.0;
  bool is_break = false;  // a BREAK marker; text is empty and weight unused

  bool operator==(const PromptSegment&) const = default;
};

// Never empty: an empty prompt gives one empty segment of weight 1, as in A1111.
std::vector<PromptSegment> parse_prompt_weights(std::string_view prompt);

}  // namespace ebb
