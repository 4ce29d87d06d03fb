#include "pipeline/clip_tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

std::filesystem::path shipped_vocab() {
  return std::filesystem::path(EBB_TEST_DATA_DIR) /
         "../../assets/vocab/clip/bpe_simple_vocab_16e6.txt.gz";
}

const ClipTokenizer& tokenizer() {
  static const ClipTokenizer instance(shipped_vocab());
  return instance;
}

// Fixtures from tools/reference/make_tokenizer_fixtures.py (transformers' CLIPTokenizer).
nlohmann::json load_fixtures() {
  std::ifstream in(std::string(EBB_TEST_DATA_DIR) + "/pipeline/clip_tokens.json");
  EXPECT_TRUE(in) << "missing tests/data/pipeline/clip_tokens.json";
  return nlohmann::json::parse(in);
}

TEST(ClipTokenizer, MatchesTransformersWithFtfy) {
  const nlohmann::json fixtures = load_fixtures();
  ASSERT_GT(fixtures["cases"].size(), 30u);
  for (const auto& c : fixtures["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tokenizer().encode(text), c["ids"].get<std::vector<int32_t>>()) << "text: " << text;
  }
}

TEST(ClipTokenizer, CachedResultsAreStable) {
  const std::string text = "a red fox, a red fox jumps over the lazy dog";
  const std::vector<int32_t> first = tokenizer().encode(text);
  EXPECT_EQ(tokenizer().encode(text), first);
  EXPECT_EQ(first.size(), 12u);
  EXPECT_EQ(first[0], first[4]);  // "a" both times: a red fox , a
}

TEST(ClipTokenizer, KnownIds) {
  EXPECT_EQ(tokenizer().encode("a"), std::vector<int32_t>({320}));
  EXPECT_EQ(tokenizer().encode(","), std::vector<int32_t>({267}));
  EXPECT_EQ(tokenizer().encode("<|startoftext|><|endoftext|>"),
            std::vector<int32_t>({ClipVocab::kStartOfText, ClipVocab::kEndOfText}));
  EXPECT_TRUE(tokenizer().encode("").empty());
  EXPECT_TRUE(tokenizer().encode(" \t\n ").empty());
}

TEST(ClipTokenizer, InvalidUtf8IsAnErrorWithOffset) {
  try {
    tokenizer().encode("abc\xff");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte offset 3"), std::string::npos) << e.what();
  }
}

TEST(ClipVocab, MissingFileIsAnError) {
  EXPECT_THROW(ClipVocab::load("/nonexistent/bpe.txt.gz"), Error);
}

TEST(ClipVocab, TruncatedFileIsAnError) {
  const test::TempDir dir;
  const std::filesystem::path path = dir / "vocab.txt";
  {
    std::ofstream out(path);
    out << "\"header#version: 0.2\ni n\nt h\nin th\n";
  }
  try {
    ClipVocab::load(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ends after 3 merges"), std::string::npos) << e.what();
  }
}

TEST(ClipVocab, UndefinedSymbolIsAnError) {
  const test::TempDir dir;
  const std::filesystem::path path = dir / "vocab.txt";
  {
    std::ofstream out(path);
    out << "header\ni n\nxyz q\n";
  }
  try {
    ClipVocab::load(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
}

TEST(ClipVocab, FoundThroughAssetsDirVariable) {
  const std::filesystem::path assets = std::filesystem::path(EBB_TEST_DATA_DIR) / "../../assets";
  ASSERT_EQ(setenv("EBB_ASSETS_DIR", assets.c_str(), 1), 0);
  EXPECT_TRUE(std::filesystem::equivalent(find_clip_vocab(), shipped_vocab()));
  ASSERT_EQ(setenv("EBB_ASSETS_DIR", "/nonexistent", 1), 0);
  EXPECT_THROW(find_clip_vocab(), Error);
  unsetenv("EBB_ASSETS_DIR");
}

}  // namespace
}  // namespace ebb
