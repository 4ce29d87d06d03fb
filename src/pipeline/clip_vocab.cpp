#include "pipeline/clip_vocab.h"

#include <zlib.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "pipeline/unicode_text.h"

namespace ebb {
namespace {

constexpr std::string_view kVocabRelativePath = "vocab/clip/bpe_simple_vocab_16e6.txt.gz";

bool is_printable_latin1(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
}

// OpenAI's byte-to-symbol mapping: printable Latin-1 bytes are their own code point, the
// others (in byte order) U+0100 onwards. Returns the symbols in vocabulary order with bytes.
struct ByteSymbol {
  uint8_t byte;
  char32_t symbol;
};
std::array<ByteSymbol, 256> byte_symbols_in_vocab_order() {
  std::array<ByteSymbol, 256> out{};
  size_t next = 0;
  for (int b = 0; b < 256; ++b) {
    if (is_printable_latin1(b)) out[next++] = {static_cast<uint8_t>(b), static_cast<char32_t>(b)};
  }
  char32_t shifted = 0x100;
  for (int b = 0; b < 256; ++b) {
    if (!is_printable_latin1(b)) out[next++] = {static_cast<uint8_t>(b), shifted++};
  }
  return out;
}

struct GzFileCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzFileCloser>;

class GzLineReader {
 public:
  explicit GzLineReader(const std::filesystem::path& path) : path_(path) {
    file_.reset(gzopen(path.c_str(), "rb"));
    if (!file_) fail("cannot open the CLIP vocabulary {}", path.string());
  }

  // Next line without its '\n'; false at the end of the file.
  bool next(std::string& line) {
    line.clear();
    char buffer[4096];
    while (gzgets(file_.get(), buffer, sizeof buffer) != nullptr) {
      line += buffer;
      if (!line.empty() && line.back() == '\n') {
        line.pop_back();
        ++line_number_;
        return true;
      }
      if (line.size() > 1 << 16) fail("{}: line {} is too long", path_.string(), line_number_ + 1);
    }
    int error = Z_OK;
    const char* message = gzerror(file_.get(), &error);
    if (error != Z_OK && error != Z_STREAM_END) {
      fail("{}: corrupt gzip data near line {}: {}", path_.string(), line_number_ + 1, message);
    }
    if (line.empty()) return false;
    ++line_number_;
    return true;
  }

  int line_number() const { return line_number_; }

 private:
  std::filesystem::path path_;
  GzFile file_;
  int line_number_ = 0;
};

std::filesystem::path executable_dir() {
  std::error_code error;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : exe.parent_path();
}

}  // namespace

ClipVocab ClipVocab::load(const std::filesystem::path& gz_path) {
  ClipVocab vocab;
  // Symbol strings as OpenAI writes them (byte symbols as UTF-8, "</w>" appended) to ids.
  std::unordered_map<std::string, int32_t> ids;
  ids.reserve(kSize);
  const std::array<ByteSymbol, 256> bytes = byte_symbols_in_vocab_order();
  for (int32_t i = 0; i < 256; ++i) {
    const std::string symbol = encode_utf8(std::u32string(1, bytes[i].symbol));
    vocab.byte_ids_[bytes[i].byte] = i;
    ids.emplace(symbol, i);
    ids.emplace(symbol + "</w>", i + 256);
  }

  GzLineReader reader(gz_path);
  std::string line;
  if (!reader.next(line)) fail("{} is empty; expected the CLIP merges", gz_path.string());
  for (int32_t rank = 0; rank < kMergeCount; ++rank) {
    if (!reader.next(line)) {
      fail("{} ends after {} merges; CLIP needs {}", gz_path.string(), rank, kMergeCount);
    }
    const size_t space = line.find(' ');
    if (space == 0 || space == std::string::npos || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      fail("{}: line {} is not a merge 'LEFT RIGHT'", gz_path.string(), reader.line_number());
    }
    const std::string left = line.substr(0, space);
    const std::string right = line.substr(space + 1);
    const auto left_id = ids.find(left);
    const auto right_id = ids.find(right);
    if (left_id == ids.end() || right_id == ids.end()) {
      fail("{}: line {} merges a symbol that is not defined before it", gz_path.string(),
           reader.line_number());
    }
    const bool new_symbol = ids.emplace(left + right, kFirstMergeId + rank).second;
    const bool new_pair =
        vocab.merge_ranks_.emplace(pair_key(left_id->second, right_id->second), rank).second;
    if (!new_symbol || !new_pair) {
      fail("{}: line {} repeats an earlier merge", gz_path.string(), reader.line_number());
    }
  }
  return vocab;
}

std::filesystem::path find_clip_vocab() {
  if (const char* assets = std::getenv("EBB_ASSETS_DIR"); assets != nullptr && *assets != '\0') {
    const std::filesystem::path path = std::filesystem::path(assets) / kVocabRelativePath;
    if (!std::filesystem::is_regular_file(path)) {
      fail("EBB_ASSETS_DIR is set, but {} does not exist", path.string());
    }
    return path;
  }
  std::vector<std::filesystem::path> tried;
  const std::filesystem::path exe_dir = executable_dir();
  if (!exe_dir.empty()) {
    tried.push_back(exe_dir.parent_path() / "share/ebb" / kVocabRelativePath);
    for (std::filesystem::path dir = exe_dir;; dir = dir.parent_path()) {
      tried.push_back(dir / "assets" / kVocabRelativePath);
      if (dir == dir.parent_path()) break;
    }
  }
  for (const std::filesystem::path& path : tried) {
    if (std::filesystem::is_regular_file(path)) return path;
  }
  std::string places;
  for (const std::filesystem::path& path : tried) places += "\n  " + path.string();
  fail(
      "cannot find the CLIP vocabulary ({}); looked in:{}\nset EBB_ASSETS_DIR to the folder "
      "that holds vocab/clip/ (assets/ in the source tree, share/ebb/ when installed)",
      kVocabRelativePath, places);
}

}  // namespace ebb
