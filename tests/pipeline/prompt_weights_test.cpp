#include "pipeline/prompt_weights.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"

namespace ebb {
namespace {

PromptSegment text(std::string s, double weight) {
  return {std::move(s), weight, false};
}
PromptSegment brk() {
  return {"", 1.0, true};
}

using Segments = std::vector<PromptSegment>;

std::string describe(const Segments& segments) {
  std::string out;
  for (const PromptSegment& s : segments) {
    out +=
        s.is_break ? "[BREAK] " : "['" + s.text + "', " + fmt::format("{:.17g}", s.weight) + "] ";
  }
  return out;
}

#define EXPECT_SEGMENTS(prompt, ...)                                                        \
  do {                                                                                      \
    const Segments actual = parse_prompt_weights(prompt);                                   \
    const Segments expected = __VA_ARGS__;                                                  \
    EXPECT_EQ(actual, expected) << "prompt: " << (prompt) << "\n got: " << describe(actual) \
                                << "\nwant: " << describe(expected);                        \
  } while (0)

// The examples of A1111's parse_prompt_attention documentation (modules/prompt_parser.py).
TEST(PromptWeights, A1111DocumentedExamples) {
  EXPECT_SEGMENTS("normal text", {text("normal text", 1.0)});
  EXPECT_SEGMENTS("an (important) word",
                  {text("an ", 1.0), text("important", 1.1), text(" word", 1.0)});
  EXPECT_SEGMENTS("\\(literal\\]", {text("(literal]", 1.0)});
  EXPECT_SEGMENTS("(unnecessary)(parens)", {text("unnecessaryparens", 1.1)});
  // A1111's example leaves one '(' open, which it closes at the end; Ebb needs it closed.
  EXPECT_SEGMENTS("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).)",
                  {text("a ", 1.0), text("house", 1.5730000000000004), text(" ", 1.1),
                   text("on", 1.0), text(" a ", 1.1), text("hill", 0.55), text(", sun, ", 1.1),
                   text("sky", 1.4641000000000006), text(".", 1.1)});
}

TEST(PromptWeights, NestingMultipliesInA1111Order) {
  EXPECT_SEGMENTS("((a))", {text("a", 1.1 * 1.1)});
  EXPECT_SEGMENTS("(((a)))", {text("a", 1.1 * 1.1 * 1.1)});
  EXPECT_SEGMENTS("[a]", {text("a", 1 / 1.1)});
  EXPECT_SEGMENTS("[[a]]", {text("a", (1 / 1.1) * (1 / 1.1))});
  EXPECT_SEGMENTS("([a])", {text("a", (1 / 1.1) * 1.1)});
  EXPECT_SEGMENTS("((a:1.5) b)", {text("a", 1.5 * 1.1), text(" b", 1.1)});
  EXPECT_SEGMENTS("[(a:2)]", {text("a", 2 * (1 / 1.1))});
}

TEST(PromptWeights, ExplicitWeights) {
  EXPECT_SEGMENTS("(a:1.5)", {text("a", 1.5)});
  EXPECT_SEGMENTS("(a:.5)", {text("a", 0.5)});
  EXPECT_SEGMENTS("(a:2.)", {text("a", 2.0)});
  EXPECT_SEGMENTS("(a:+1.25)", {text("a", 1.25)});
  EXPECT_SEGMENTS("(a:-1)", {text("a", -1.0)});
  EXPECT_SEGMENTS("(a:0)", {text("a", 0.0)});
  EXPECT_SEGMENTS("x (a:1) y", {text("x a y", 1.0)});      // weight 1 joins its neighbours
  EXPECT_SEGMENTS("(a:\u0661.\u0665)", {text("a", 1.5)});  // Python's float() reads any digit
}

TEST(PromptWeights, ColonsOutsideWeights) {
  EXPECT_SEGMENTS("16:9, a:b", {text("16:9, a:b", 1.0)});
  EXPECT_SEGMENTS("(a:b)", {text("a:b", 1.1)});
  EXPECT_SEGMENTS("(a:1.5 b)", {text("a:1.5 b", 1.1)});
  EXPECT_SEGMENTS("(a: 1.5)", {text("a: 1.5", 1.1)});
}

TEST(PromptWeights, Escapes) {
  EXPECT_SEGMENTS("\\(a\\)", {text("(a)", 1.0)});
  EXPECT_SEGMENTS("\\[a\\]", {text("[a]", 1.0)});
  EXPECT_SEGMENTS("a\\\\b", {text("a\\b", 1.0)});
  EXPECT_SEGMENTS("a\\b", {text("ab", 1.0)});  // A1111 drops a backslash before other text
  EXPECT_SEGMENTS("a\\", {text("a", 1.0)});
  EXPECT_SEGMENTS("(\\(a\\))", {text("(a)", 1.1)});
  EXPECT_SEGMENTS("\\\\(a)", {text("\\", 1.0), text("a", 1.1)});
}

TEST(PromptWeights, BracketKindsAreTrackedSeparatelyAsInA1111) {
  // A '(' closes at the next ')' whatever '[' lies between.
  EXPECT_SEGMENTS("([a:2)] b", {text("a", 2 * (1 / 1.1)), text(" b", 1.0)});
  EXPECT_SEGMENTS("([a)] b", {text("a b", 1.0)});  // 1.1 * (1 / 1.1) rounds to exactly 1
}

TEST(PromptWeights, Break) {
  EXPECT_SEGMENTS("a BREAK b", {text("a", 1.0), brk(), text("b", 1.0)});
  EXPECT_SEGMENTS("a  BREAK\n b", {text("a", 1.0), brk(), text("b", 1.0)});
  EXPECT_SEGMENTS("a, BREAK, b", {text("a,", 1.0), brk(), text(", b", 1.0)});
  EXPECT_SEGMENTS("BREAK", {text("", 1.0), brk(), text("", 1.0)});
  EXPECT_SEGMENTS("a BREAK BREAK b", {text("a", 1.0), brk(), text("", 1.0), brk(), text("b", 1.0)});
  EXPECT_SEGMENTS("(a) BREAK b", {text("a", 1.1), text("", 1.0), brk(), text("b", 1.0)});
  EXPECT_SEGMENTS("(a BREAK b)", {text("a", 1.1), brk(), text("b", 1.1)});
  for (const char* not_a_break : {"break", "Break", "aBREAK", "BREAKa", "_BREAK", "BREAK_",
                                  "BREAK1", "\u00e9BREAK", "BREAKBREAK"}) {
    EXPECT_SEGMENTS(not_a_break, {text(not_a_break, 1.0)});
  }
}

TEST(PromptWeights, EmptyPrompt) {
  EXPECT_SEGMENTS("", {text("", 1.0)});
}

void expect_error(const std::string& prompt, const std::string& fragment) {
  try {
    const Segments segments = parse_prompt_weights(prompt);
    ADD_FAILURE() << "no error for: " << prompt << " -> " << describe(segments);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "prompt: " << prompt << "\nmessage: " << e.what() << "\nwanted: " << fragment;
  }
}

TEST(PromptWeights, UnbalancedBracketsAreErrorsNamingThePosition) {
  expect_error("(unbalanced", "unbalanced '(' at character 1 of the prompt");
  expect_error("(unbalanced", "write \\( for a literal '('");
  expect_error("a (b", "unbalanced '(' at character 3");
  expect_error("((a)", "unbalanced '(' at character 1");
  expect_error("(a))", "unbalanced ')' at character 4");
  expect_error("(a))", "write \\) for a literal ')'");
  expect_error("a]", "unbalanced ']' at character 2");
  expect_error("[a", "unbalanced '[' at character 1");
  expect_error("[a (b)", "unbalanced '[' at character 1");
  expect_error("(a [b]", "unbalanced '(' at character 1");
  expect_error("a [b (c", "unbalanced '[' at character 3");
  expect_error("a:1.5)", "unbalanced ')' at character 6");
  expect_error("smile :)", "unbalanced ')' at character 8");
  // Positions count characters, not bytes.
  expect_error("caf\u00e9 (x", "unbalanced '(' at character 6");
}

TEST(PromptWeights, MalformedWeightsAreErrors) {
  expect_error("(a:1.2.3)", "invalid weight '1.2.3' at character 4");
  expect_error("(a:.)", "invalid weight '.' at character 4");
  expect_error("(a:-.)", "invalid weight '-.'");
}

TEST(PromptWeights, InvalidUtf8IsAnError) {
  expect_error("a\xc3(", "not valid UTF-8");
}

// A second, independent reading of A1111's grammar with std::regex (its token regex, ASCII
// only), to compare against on random prompts built from the syntax's pieces.
struct Reference {
  Segments segments;
  bool valid = true;  // false: Ebb must report an error (unbalanced bracket, bad weight)
};

void reference_append_text(const std::string& t, Segments& out) {
  static const std::regex break_re(R"(\s*\bBREAK\b\s*)");
  auto begin = t.cbegin();
  std::smatch m;
  auto flags = std::regex_constants::match_default;
  while (std::regex_search(begin, t.cend(), m, break_re, flags)) {
    out.push_back(text(std::string(begin, m[0].first), 1.0));
    out.push_back(brk());
    begin = m[0].second;
    flags = std::regex_constants::match_prev_avail;
  }
  out.push_back(text(std::string(begin, t.cend()), 1.0));
}

Reference reference_parse(const std::string& prompt) {
  static const std::regex token(
      R"(\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:([+-]?[.\d]+)\)|\)|\]|[^\\()\[\]:]+|:)");
  static const std::regex number(R"([+-]?(\d+\.?\d*|\.\d+))");
  Reference ref;
  std::vector<size_t> round, square;
  auto multiply = [&](size_t from, double m) {
    for (size_t i = from; i < ref.segments.size(); ++i) {
      if (!ref.segments[i].is_break) ref.segments[i].weight *= m;
    }
  };
  for (auto it = std::sregex_iterator(prompt.begin(), prompt.end(), token);
       it != std::sregex_iterator(); ++it) {
    const std::string t = it->str();
    const bool weight = (*it)[1].matched;
    if (t[0] == '\\') {
      ref.segments.push_back(text(t.substr(1), 1.0));
    } else if (t == "(") {
      round.push_back(ref.segments.size());
    } else if (t == "[") {
      square.push_back(ref.segments.size());
    } else if (weight || t == ")") {
      if (round.empty()) return {{}, false};
      if (weight && !std::regex_match((*it)[1].str(), number)) return {{}, false};
      multiply(round.back(), weight ? std::stod((*it)[1].str()) : 1.1);
      round.pop_back();
    } else if (t == "]") {
      if (square.empty()) return {{}, false};
      multiply(square.back(), 1 / 1.1);
      square.pop_back();
    } else {
      reference_append_text(t, ref.segments);
    }
  }
  if (!round.empty() || !square.empty()) return {{}, false};
  Segments joined;
  for (const PromptSegment& s : ref.segments) {
    if (!joined.empty() && !s.is_break && !joined.back().is_break &&
        joined.back().weight == s.weight) {
      joined.back().text += s.text;
    } else {
      joined.push_back(s);
    }
  }
  if (joined.empty()) joined.push_back(text("", 1.0));
  ref.segments = joined;
  return ref;
}

TEST(PromptWeights, RandomPromptsMatchAnIndependentReading) {
  const std::vector<std::string> pieces = {
      "a",  "cat", " ",    ", ",   "(",   ")",   "[",    "]",  ":1.5)",   ":0.25)",
      ":",  "x:y", "\\(",  "\\)",  "\\[", "\\]", "\\\\", "\\", " BREAK ", "BREAK",
      "16", ".",   ":2.)", ":-1)", "((",  "))",  "[[",   "]]", "BREAKx",  "\n"};
  std::mt19937 rng(1234);
  int valid = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string prompt;
    const int length = std::uniform_int_distribution<int>(0, 14)(rng);
    for (int i = 0; i < length; ++i) {
      prompt += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng)];
    }
    const Reference ref = reference_parse(prompt);
    if (!ref.valid) {
      EXPECT_THROW(parse_prompt_weights(prompt), Error) << "prompt: " << prompt;
      continue;
    }
    ++valid;
    EXPECT_SEGMENTS(prompt, ref.segments);
  }
  EXPECT_GT(valid, 500);  // enough valid prompts were drawn to mean something
}

}  // namespace
}  // namespace ebb
