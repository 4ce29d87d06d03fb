#include "pipeline/clip_tokenizer.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "pipeline/clip_text_cleaning.h"
#include "pipeline/unicode_text.h"

namespace ebb {
namespace {

constexpr std::string_view kStartOfText = "<|startoftext|>";
constexpr std::string_view kEndOfText = "<|endoftext|>";
constexpr std::u32string_view kStartOfText32 = U"<|startoftext|>";
constexpr std::u32string_view kEndOfText32 = U"<|endoftext|>";
// Bounds the cache for long-running servers; a prompt's words are a few hundred at most.
constexpr size_t kMaxCachedWords = 1 << 16;

// Length of the contraction ('s 't 're 've 'm 'll 'd) at text[i], or 0.
size_t contraction_length(std::u32string_view text, size_t i) {
  if (text[i] != U'\'' || i + 1 >= text.size()) return 0;
  const char32_t c = text[i + 1];
  // Case-insensitive matching: U+017F LATIN SMALL LETTER LONG S case-folds to 's'.
  if (c == U's' || c == 0x017F || c == U't' || c == U'm' || c == U'd') return 2;
  if (i + 2 >= text.size()) return 0;
  const std::u32string_view two = text.substr(i + 1, 2);
  return two == U"re" || two == U"ve" || two == U"ll" ? 3 : 0;
}

}  // namespace

std::vector<int32_t> ClipTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  // Special tokens written literally are matched before any cleaning, as transformers does.
  size_t start = 0;
  while (start <= text.size()) {
    const size_t start_token = text.find(kStartOfText, start);
    const size_t end_token = text.find(kEndOfText, start);
    const size_t special = std::min(start_token, end_token);
    encode_clean(clean_clip_text(text.substr(start, special - start)), out);
    if (special == std::string_view::npos) break;
    const bool is_start = special == start_token;
    out.push_back(is_start ? ClipVocab::kStartOfText : ClipVocab::kEndOfText);
    start = special + (is_start ? kStartOfText.size() : kEndOfText.size());
  }
  return out;
}

void ClipTokenizer::encode_clean(std::string_view cleaned, std::vector<int32_t>& out) const {
  const std::u32string text = decode_utf8(cleaned, "the cleaned prompt");
  size_t i = 0;
  while (i < text.size()) {
    const std::u32string_view rest = std::u32string_view(text).substr(i);
    if (rest.starts_with(kStartOfText32) || rest.starts_with(kEndOfText32)) {
      const bool is_start = rest.starts_with(kStartOfText32);
      out.push_back(is_start ? ClipVocab::kStartOfText : ClipVocab::kEndOfText);
      i += is_start ? kStartOfText32.size() : kEndOfText32.size();
      continue;
    }
    size_t end = i + contraction_length(text, i);
    if (end == i) {
      const char32_t c = text[i];
      if (is_white_space(c)) {
        ++i;
        continue;
      }
      end = i + 1;
      if (is_letter(c)) {
        while (end < text.size() && is_letter(text[end])) ++end;
      } else if (!is_number(c)) {
        while (end < text.size() && !is_white_space(text[end]) && !is_letter(text[end]) &&
               !is_number(text[end])) {
          ++end;
        }
      }
    }
    encode_word(encode_utf8(std::u32string_view(text).substr(i, end - i)), out);
    i = end;
  }
}

void ClipTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  {
    const std::lock_guard lock(cache_mutex_);
    if (const auto it = cache_.find(std::string(word)); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = byte_pair_merge(word);
  out.insert(out.end(), ids.begin(), ids.end());
  const std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kMaxCachedWords) cache_.clear();
  cache_.emplace(std::string(word), std::move(ids));
}

// Repeatedly merges the adjacent pair with the lowest rank, every occurrence left to right,
// until no adjacent pair has a merge.
std::vector<int32_t> ClipTokenizer::byte_pair_merge(std::string_view word) const {
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    symbols.push_back(vocab_.byte_symbol(static_cast<uint8_t>(word[i]), i + 1 == word.size()));
  }
  std::vector<int32_t> merged;
  while (symbols.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    size_t best = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const int32_t rank = vocab_.merge_rank(symbols[i], symbols[i + 1]);
      if (rank >= 0 && rank < best_rank) {
        best_rank = rank;
        best = i;
      }
    }
    if (best_rank == std::numeric_limits<int32_t>::max()) break;
    const int32_t left = symbols[best];
    const int32_t right = symbols[best + 1];
    merged.clear();
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
        merged.push_back(ClipVocab::kFirstMergeId + best_rank);
        ++i;
      } else {
        merged.push_back(symbols[i]);
      }
    }
    symbols.swap(merged);
  }
  return symbols;
}

}  // namespace ebb
