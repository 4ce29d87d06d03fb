#pragma once
// The CLIP text tokenizer: the same ids as transformers' Python CLIPTokenizer with ftfy
// installed (what diffusers and AUTOMATIC1111 used for SD 1.x/2.x/XL), on the shipped OpenAI
// vocabulary. Steps:
//  1. the literal special tokens "<|startoftext|>" and "<|endoftext|>" are cut out of the text
//     first (they become 49406 / 49407), and each remaining piece is handled on its own;
//  2. text cleaning (clip_text_cleaning.h: ftfy, whitespace, lower case);
//  3. CLIP's pre-tokenizer, the regex
//       <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//     (case-insensitive; after lower-casing that only adds 'ſ' as a form of 's');
//  4. byte-level BPE on each piece's UTF-8 bytes, the last symbol marked as ending the word;
//     results are cached per piece.
// transformers 5 replaced that tokenizer by its Rust one, which skips ftfy: the two differ on
// text ftfy changes (HTML references, curly quotes, ligatures, full-width forms, control
// characters) and on Greek final sigma; Ebb follows the ftfy one.
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pipeline/clip_vocab.h"

namespace ebb {

class ClipTokenizer {
 public:
  explicit ClipTokenizer(ClipVocab vocab) : vocab_(std::move(vocab)) {}
  // Loads the vocabulary from a .gz file (see find_clip_vocab for the shipped one).
  explicit ClipTokenizer(const std::filesystem::path& vocab_gz)
      : ClipTokenizer(ClipVocab::load(vocab_gz)) {}

  // Token ids of `text` (UTF-8; invalid UTF-8 is an ebb::Error), without start/end tokens.
  // Thread-safe.
  std::vector<int32_t> encode(std::string_view text) const;

 private:
  void encode_clean(std::string_view cleaned, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  std::vector<int32_t> byte_pair_merge(std::string_view word) const;

  ClipVocab vocab_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace ebb
