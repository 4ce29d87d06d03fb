#pragma once
// The CLIP byte-level BPE vocabulary, read from OpenAI's bpe_simple_vocab_16e6.txt.gz (the
// file Ebb ships in assets/vocab/clip/). Ids follow OpenAI's construction, which every CLIP
// text encoder (OpenAI CLIP-L, OpenCLIP ViT-H and bigG) was trained with:
//   0–255     one symbol per byte, printable Latin-1 bytes first, then the others;
//   256–511   the same symbols ending a word ("</w>");
//   512–49405 the first 48894 merges of the file, in order (rank r gives id 512 + r);
//   49406 <|startoftext|>, 49407 <|endoftext|>.
#include <array>
#include <cstdint>
#include <filesystem>
#include <unordered_map>

namespace ebb {

class ClipVocab {
 public:
  static constexpr int32_t kMergeCount = 48894;
  static constexpr int32_t kFirstMergeId = 512;
  static constexpr int32_t kStartOfText = 49406;
  static constexpr int32_t kEndOfText = 49407;
  static constexpr int32_t kSize = 49408;

  // Reads the gzip file; a missing, corrupt or truncated file is an ebb::Error naming it.
  static ClipVocab load(const std::filesystem::path& gz_path);

  int32_t byte_symbol(uint8_t byte, bool ends_word) const {
    return byte_ids_[byte] + (ends_word ? 256 : 0);
  }
  // Rank of the merge (left, right), or -1 when the pair never merges.
  int32_t merge_rank(int32_t left, int32_t right) const {
    const auto it = merge_ranks_.find(pair_key(left, right));
    return it == merge_ranks_.end() ? -1 : it->second;
  }

 private:
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  std::array<int32_t, 256> byte_ids_{};
  std::unordered_map<uint64_t, int32_t> merge_ranks_;
};

// Where the shipped vocabulary is: $EBB_ASSETS_DIR/vocab/clip/ when that variable is set;
// otherwise <executable dir>/../share/ebb/vocab/clip/ (installed) or assets/vocab/clip/ in the
// executable's folder or any folder above it (build trees). An ebb::Error lists the places
// tried when none has the file.
std::filesystem::path find_clip_vocab();

}  // namespace ebb
