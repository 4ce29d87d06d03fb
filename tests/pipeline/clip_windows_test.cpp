#include "pipeline/clip_windows.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace ebb {
namespace {

constexpr int32_t kA = 320;      // "a"
constexpr int32_t kComma = 267;  // ","
constexpr int32_t kBos = ClipVocab::kStartOfText;
constexpr int32_t kEos = ClipVocab::kEndOfText;

const ClipTokenizer& tokenizer() {
  static const ClipTokenizer instance(std::filesystem::path(EBB_TEST_DATA_DIR) /
                                      "../../assets/vocab/clip/bpe_simple_vocab_16e6.txt.gz");
  return instance;
}

ClipWindows windows_of(const std::string& prompt, ClipWindowOptions options = {}) {
  return make_clip_windows(tokenizer(), parse_prompt_weights(prompt), options);
}

std::vector<int32_t> window_ids(const ClipWindows& w, size_t index) {
  const auto begin = w.ids.begin() + static_cast<std::ptrdiff_t>(index * ClipWindows::kLength);
  return {begin, begin + ClipWindows::kLength};
}

// [BOS] tokens [EOS] then padding up to 77.
std::vector<int32_t> window(std::vector<int32_t> tokens, int32_t pad = kEos) {
  std::vector<int32_t> out = {kBos};
  out.insert(out.end(), tokens.begin(), tokens.end());
  out.push_back(kEos);
  out.resize(ClipWindows::kLength, pad);
  return out;
}

std::vector<int32_t> repeat(int32_t id, size_t n) {
  return std::vector<int32_t>(n, id);
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string words(const std::string& word, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += word + " ";
  return out;
}

// diffusers' tokenizer call (padding="max_length", max_length=77, truncation=True), from
// tools/reference/make_tokenizer_fixtures.py.
TEST(ClipWindows, MatchDiffusersPaddedInput) {
  std::ifstream in(std::string(EBB_TEST_DATA_DIR) + "/pipeline/clip_tokens.json");
  ASSERT_TRUE(in);
  const nlohmann::json fixtures = nlohmann::json::parse(in);
  int compared = 0;
  for (const auto& c : fixtures["cases"]) {
    if (!c.contains("window_pad_eos")) continue;
    const std::string text = c["text"];
    const bool fits = c["ids"].size() <= ClipWindows::kPromptTokens;
    // Longer prompts: diffusers truncates, which is Ebb's first window without backtracking.
    const ClipWindowOptions eos{kEos, fits ? 20 : 0};
    const ClipWindowOptions zero{0, fits ? 20 : 0};
    EXPECT_EQ(window_ids(windows_of(text, eos), 0), c["window_pad_eos"].get<std::vector<int32_t>>())
        << text;
    EXPECT_EQ(window_ids(windows_of(text, zero), 0),
              c["window_pad_zero"].get<std::vector<int32_t>>())
        << text;
    EXPECT_EQ(windows_of(text).count(), fits ? 1u : 2u) << text;
    ++compared;
  }
  EXPECT_GE(compared, 4);
}

TEST(ClipWindows, EmptyPromptIsOneWindow) {
  const ClipWindows w = windows_of("");
  ASSERT_EQ(w.count(), 1u);
  EXPECT_EQ(window_ids(w, 0), window({}));
  EXPECT_EQ(w.weights, std::vector<float>(ClipWindows::kLength, 1.0f));
  EXPECT_EQ(window_ids(windows_of("", {0, 20}), 0), window({}, 0));
}

TEST(ClipWindows, WeightsFollowTokens) {
  const ClipWindows w = windows_of("a (a) [a] (a a:1.5)");
  ASSERT_EQ(w.count(), 1u);
  EXPECT_EQ(window_ids(w, 0), window(repeat(kA, 5)));
  const std::vector<float> expected_start = {1.0f, 1.0f, 1.1f, static_cast<float>(1 / 1.1),
                                             1.5f, 1.5f, 1.0f, 1.0f};
  EXPECT_EQ(std::vector<float>(w.weights.begin(), w.weights.begin() + 8), expected_start);
}

TEST(ClipWindows, SeventyFiveTokensFitOneWindowSeventySixTakeTwo) {
  EXPECT_EQ(windows_of(words("a", 75)).count(), 1u);
  const ClipWindows w = windows_of(words("a", 76));
  ASSERT_EQ(w.count(), 2u);
  EXPECT_EQ(window_ids(w, 0), window(repeat(kA, 75)));
  EXPECT_EQ(window_ids(w, 1), window({kA}));
}

TEST(ClipWindows, CommaNearTheEndMovesTheRestToTheNextWindow) {
  // 70 × a, comma, 10 × a: the window fills at 75 with the comma 5 from its end, so the 4
  // tokens after the comma start the next window.
  const std::string prompt = words("a", 70) + ", " + words("a", 10);
  const ClipWindows w = windows_of(prompt);
  ASSERT_EQ(w.count(), 2u);
  EXPECT_EQ(window_ids(w, 0), window(concat(repeat(kA, 70), {kComma})));
  EXPECT_EQ(window_ids(w, 1), window(repeat(kA, 10)));

  const ClipWindows strict = windows_of(prompt, {kEos, 0});  // stable-diffusion.cpp
  ASSERT_EQ(strict.count(), 2u);
  EXPECT_EQ(window_ids(strict, 0), window(concat(concat(repeat(kA, 70), {kComma}), repeat(kA, 4))));
  EXPECT_EQ(window_ids(strict, 1), window(repeat(kA, 6)));
}

TEST(ClipWindows, CommaTooFarBackDoesNotMove) {
  // The comma is 21 tokens from the end of the full window: more than the backtrack of 20.
  const std::string prompt = words("a", 54) + ", " + words("a", 30);
  const ClipWindows w = windows_of(prompt);
  ASSERT_EQ(w.count(), 2u);
  EXPECT_EQ(window_ids(w, 0), window(concat(concat(repeat(kA, 54), {kComma}), repeat(kA, 20))));
  EXPECT_EQ(window_ids(w, 1), window(repeat(kA, 10)));
  // Exactly 20 from the end moves.
  const ClipWindows moved = windows_of(words("a", 55) + ", " + words("a", 30));
  EXPECT_EQ(window_ids(moved, 0), window(concat(repeat(kA, 55), {kComma})));
}

TEST(ClipWindows, CommaAsTheSeventySixthTokenStartsTheNextWindow) {
  const ClipWindows w = windows_of(words("a", 60) + ", " + words("a", 14) + ", a");
  ASSERT_EQ(w.count(), 2u);
  EXPECT_EQ(window_ids(w, 0), window(concat(concat(repeat(kA, 60), {kComma}), repeat(kA, 14))));
  EXPECT_EQ(window_ids(w, 1), window({kComma, kA}));
}

TEST(ClipWindows, MovedTokensKeepTheirWeights) {
  const ClipWindows w = windows_of(words("a", 70) + ", " + "(" + words("a", 10) + ")");
  ASSERT_EQ(w.count(), 2u);
  for (size_t i = 1; i <= 10; ++i) EXPECT_FLOAT_EQ(w.weights[ClipWindows::kLength + i], 1.1f);
}

TEST(ClipWindows, Break) {
  ClipWindows w = windows_of("a BREAK a a");
  ASSERT_EQ(w.count(), 2u);
  EXPECT_EQ(window_ids(w, 0), window({kA}));
  EXPECT_EQ(window_ids(w, 1), window({kA, kA}));
  EXPECT_EQ(windows_of("BREAK a").count(), 2u);  // the empty first window is kept, as in A1111
  EXPECT_EQ(window_ids(windows_of("BREAK a"), 0), window({}));
  EXPECT_EQ(windows_of("a BREAK").count(), 1u);  // no empty window after a final BREAK
  EXPECT_EQ(windows_of("a BREAK BREAK a").count(), 3u);
  EXPECT_EQ(windows_of("BREAK").count(), 1u);
}

TEST(ClipWindows, ZeroPaddingForOpenClip) {
  const ClipWindows w = windows_of(words("a", 76), {0, 20});
  ASSERT_EQ(w.count(), 2u);
  EXPECT_EQ(window_ids(w, 0), window(repeat(kA, 75), 0));
  EXPECT_EQ(window_ids(w, 1), window({kA}, 0));
  // As in A1111, padding starts after the first <|endoftext|>, even one the prompt wrote.
  EXPECT_EQ(window_ids(windows_of("a<|endoftext|>a", {0, 20}), 0), window({kA}, 0));
}

// Independent statement of the rule on random token streams: a window takes the next 75
// tokens; if more follow and the 76th is not a comma, and a comma lies within the last 20,
// the window ends after that comma instead.
std::vector<std::vector<int32_t>> reference_windows(
    const std::vector<std::vector<int32_t>>& parts) {
  std::vector<std::vector<int32_t>> out;
  for (const std::vector<int32_t>& tokens : parts) {
    size_t start = 0;
    do {
      size_t end = std::min(start + 75, tokens.size());
      if (end < tokens.size() && end - start == 75 && tokens[end] != kComma) {
        for (size_t i = end; i-- > start && end - i <= 20;) {
          if (tokens[i] == kComma) {
            end = i + 1;
            break;
          }
        }
      }
      out.push_back(window({tokens.begin() + static_cast<std::ptrdiff_t>(start),
                            tokens.begin() + static_cast<std::ptrdiff_t>(end)}));
      start = end;
    } while (start < tokens.size());
  }
  return out;
}

TEST(ClipWindows, RandomTokenStreamsMatchTheRule) {
  std::mt19937 rng(77);
  for (int trial = 0; trial < 300; ++trial) {
    // Parts separated by BREAK; each part a random run of "a" and ",".
    std::vector<PromptSegment> segments;
    std::vector<std::vector<int32_t>> parts(1);
    const int parts_count = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int p = 0; p < parts_count; ++p) {
      if (p > 0) {
        segments.push_back({"", 1.0, true});
        parts.emplace_back();
      }
      const int n = std::uniform_int_distribution<int>(1, 260)(rng);
      const double comma_rate = std::uniform_real_distribution<double>(0.0, 0.3)(rng);
      std::string text;
      for (int i = 0; i < n; ++i) {
        const bool comma = std::bernoulli_distribution(comma_rate)(rng);
        text += comma ? ", " : "a ";
        parts.back().push_back(comma ? kComma : kA);
      }
      segments.push_back({text, 1.0, false});
    }
    const ClipWindows w = make_clip_windows(tokenizer(), segments);
    const std::vector<std::vector<int32_t>> expected = reference_windows(parts);
    ASSERT_EQ(w.count(), expected.size()) << "trial " << trial;
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(window_ids(w, i), expected[i]) << "trial " << trial << ", window " << i;
    }
  }
}

}  // namespace
}  // namespace ebb
