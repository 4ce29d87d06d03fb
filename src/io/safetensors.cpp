#include "io/safetensors.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>

#include "core/checked_math.h"
#include "core/error.h"
#include "io/tensor_overlap.h"
#include "io/utf8_text.h"

namespace ebb {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kLengthBytes = 8;
// Real headers stay under 10 MB even for checkpoints with tens of thousands of tensors; a
// larger length is a corrupt or hostile file, not a model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// A valid header nests three levels (object, tensor entry, shape); the limit only bounds what a
// malformed one can make the JSON parser build.
constexpr int kMaxJsonDepth = 8;
constexpr std::string_view kMetadataKey = "__metadata__";

// nlohmann's SAX events carry no positions, so the header is fed through this
// iterator, which remembers the last byte the lexer read; errors can then name a file offset.
class TrackingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  TrackingIterator() = default;
  TrackingIterator(const char* at, const char** last_read) : at_(at), last_read_(last_read) {}

  reference operator*() const {
    *last_read_ = at_;
    return *at_;
  }
  TrackingIterator& operator++() {
    ++at_;
    return *this;
  }
  TrackingIterator operator++(int) {
    TrackingIterator before = *this;
    ++at_;
    return before;
  }
  bool operator==(const TrackingIterator& other) const { return at_ == other.at_; }

 private:
  const char* at_ = nullptr;
  const char** last_read_ = nullptr;
};

std::string safetensors_dtype_names() {
  std::vector<std::string_view> names;
  for (int i = 0; i < kDTypeCount; ++i)
    if (dtype_in_safetensors(static_cast<DType>(i))) names.push_back(dtype_name(DType(i)));
  return fmt::format("{}", fmt::join(names, ", "));
}

class HeaderParser {
 public:
  HeaderParser(std::span<const std::byte> file, const std::string& file_name)
      : file_(file), file_name_(file_name) {}

  SafetensorsHeader parse() {
    SafetensorsHeader header;
    data_offset_ = kLengthBytes + read_header_length();
    header.data_offset = data_offset_;
    Json root = parse_json();
    if (!root.is_object())
      fail_at(kLengthBytes, "the header is a JSON {}, expected an object", root.type_name());

    // Entries are checked in header order so the first bad one in the file is reported.
    std::vector<std::pair<uint64_t, const std::string*>> entries;
    for (const auto& [name, at] : entry_offsets_) entries.emplace_back(at, &name);
    std::sort(entries.begin(), entries.end());
    std::vector<TensorInfo> tensors;
    for (const auto& [at, name] : entries) {
      if (*name == kMetadataKey)
        header.metadata = parse_metadata(root.at(*name));
      else
        tensors.push_back(parse_tensor(*name, root.at(*name)));
    }
    // In header order, so tensors at one offset stay in that order.
    const std::vector<size_t> order = order_by_offset(tensors);
    check_no_overlap(tensors, order);
    for (size_t i : order) header.tensors.push_back(std::move(tensors[i]));
    return header;
  }

 private:
  template <typename... Args>
  [[noreturn]] void fail_at(uint64_t offset, fmt::format_string<Args...> format,
                            Args&&... args) const {
    fail("{}: byte {}: {}{}{}", file_name_, offset, context_, context_.empty() ? "" : ": ",
         fmt::format(format, std::forward<Args>(args)...));
  }

  uint64_t read_header_length() const {
    if (file_.size() < kLengthBytes)
      fail_at(0, "file is {} bytes, too short for the 8-byte safetensors header length",
              file_.size());
    uint64_t length = 0;
    for (uint64_t i = 0; i < kLengthBytes; ++i)
      length |= static_cast<uint64_t>(file_[i]) << (8 * i);
    if (length > file_.size() - kLengthBytes)
      fail_at(0, "header length {} runs past the end of the file ({} bytes after the length)",
              length, file_.size() - kLengthBytes);
    if (length > kMaxHeaderBytes)
      fail_at(0, "header length {} exceeds the {} byte limit (real headers are under 10 MB)",
              length, kMaxHeaderBytes);
    return length;
  }

  uint64_t offset_of(const char* p) const {
    return static_cast<uint64_t>(p - reinterpret_cast<const char*>(file_.data()));
  }

  // Builds the DOM with nlohmann's own SAX builder while checking what the DOM would lose:
  // duplicate keys (nlohmann keeps the last, letting two tensors hide behind one name) and
  // where each top-level key sits in the file. (nlohmann's callback parser would do too, but
  // it rescans the parent object after every member, which is quadratic in the tensor count.)
  class JsonEvents {
   public:
    JsonEvents(HeaderParser& parser, Json& root, const char* const& last_read)
        : parser_(parser), dom_(root), last_read_(last_read) {}

    bool null() { return dom_.null(); }
    bool boolean(bool v) { return dom_.boolean(v); }
    bool number_integer(Json::number_integer_t v) { return dom_.number_integer(v); }
    bool number_unsigned(Json::number_unsigned_t v) { return dom_.number_unsigned(v); }
    bool number_float(Json::number_float_t v, const std::string& s) {
      return dom_.number_float(v, s);
    }
    bool string(std::string& v) { return dom_.string(v); }
    bool binary(Json::binary_t& v) { return dom_.binary(v); }
    bool start_object(std::size_t n) {
      enter();
      open_objects_.emplace_back();
      return dom_.start_object(n);
    }
    bool end_object() {
      --depth_;
      open_objects_.pop_back();
      return dom_.end_object();
    }
    bool start_array(std::size_t n) {
      enter();
      return dom_.start_array(n);
    }
    bool end_array() {
      --depth_;
      return dom_.end_array();
    }
    bool key(std::string& key) {
      uint64_t at = parser_.offset_of(key_start(last_read_));
      if (depth_ == 1) {
        auto [first, inserted] = parser_.entry_offsets_.emplace(key, at);
        if (!inserted)
          parser_.fail_at(at, "duplicate tensor name '{}' (first at byte {})", printable_name(key),
                          first->second);
      } else if (!open_objects_.back().insert(key).second) {
        parser_.fail_at(at, "duplicate key '{}' in a JSON object", printable_name(key));
      }
      return dom_.key(key);
    }
    bool parse_error(std::size_t bytes_read, const std::string&, const Json::exception& e) {
      // The offending byte is the last one read.
      uint64_t at = kLengthBytes + std::min<uint64_t>(bytes_read == 0 ? 0 : bytes_read - 1,
                                                      parser_.data_offset_ - kLengthBytes);
      if (std::string_view(e.what()).find("UTF-8") != std::string_view::npos)
        parser_.fail_at(at, "header holds invalid UTF-8 (tensor names and metadata must be UTF-8)");
      parser_.fail_at(at, "header is not valid JSON: {}", reason(e));
    }

   private:
    void enter() {
      if (++depth_ > kMaxJsonDepth)
        parser_.fail_at(parser_.offset_of(last_read_), "JSON nested deeper than {} levels",
                        kMaxJsonDepth);
    }

    // The lexer has just read a key's closing quote. Inside a JSON string every quote follows
    // an odd run of backslashes, so the opening quote is the nearest earlier one after an even
    // run.
    static const char* key_start(const char* closing_quote) {
      const char* p = closing_quote;
      for (;;) {
        --p;
        if (*p != '"') continue;
        const char* q = p;
        while (q[-1] == '\\') --q;
        if ((p - q) % 2 == 0) return p;
      }
    }

    HeaderParser& parser_;
    nlohmann::detail::json_sax_dom_parser<Json> dom_;
    const char* const& last_read_;
    int depth_ = 0;
    // Keys seen in each open object below the root (the root's are in entry_offsets_).
    std::vector<std::set<std::string>> open_objects_;
  };

  Json parse_json() {
    const char* begin = reinterpret_cast<const char*>(file_.data()) + kLengthBytes;
    const char* end = reinterpret_cast<const char*>(file_.data()) + data_offset_;
    // nlohmann takes a NUL byte for the end of the input and would ignore whatever follows;
    // JSON text never holds one.
    if (const void* nul = std::memchr(begin, 0, static_cast<size_t>(end - begin)))
      fail_at(offset_of(static_cast<const char*>(nul)), "header is not valid JSON: NUL byte");
    const char* last_read = begin;
    Json root;
    JsonEvents events(*this, root, last_read);
    Json::sax_parse(TrackingIterator(begin, &last_read), TrackingIterator(end, &last_read),
                    &events);
    return root;
  }

  // nlohmann's message without its "[json.exception.…] " tag and "parse error at line 1,
  // column N: " prefix: the file offset given instead is more useful.
  static std::string_view reason(const Json::exception& e) {
    std::string_view what = e.what();
    if (size_t tag_end = what.find("] "); tag_end != std::string_view::npos)
      what.remove_prefix(tag_end + 2);
    if (what.rfind("parse error", 0) == 0) {
      if (size_t colon = what.find(": "); colon != std::string_view::npos)
        what.remove_prefix(colon + 2);
    }
    return what;
  }

  std::vector<std::pair<std::string, std::string>> parse_metadata(const Json& entry) const {
    uint64_t at = entry_offsets_.at(std::string(kMetadataKey));
    if (!entry.is_object())
      fail_at(at, "{} is a JSON {}, expected an object of strings", kMetadataKey,
              entry.type_name());
    std::vector<std::pair<std::string, std::string>> metadata;
    for (const auto& [key, value] : entry.items()) {
      if (!value.is_string())
        fail_at(at, "{} value of '{}' is a JSON {}, expected a string", kMetadataKey,
                printable_name(key), value.type_name());
      metadata.emplace_back(key, value.get<std::string>());
    }
    return metadata;
  }

  // A non-negative JSON integer no larger than `max`, or an error naming `what`.
  uint64_t read_count(const Json& value, uint64_t max, uint64_t at, std::string_view what) const {
    if (value.is_number_unsigned() && value.get<uint64_t>() <= max) return value.get<uint64_t>();
    if (value.is_number())
      fail_at(at, "{} holds {}, expected an integer in [0, {}]", what, value.dump(), max);
    fail_at(at, "{} holds a JSON {}, expected an integer in [0, {}]", what, value.type_name(), max);
  }

  const Json& field(const Json& entry, const char* key, uint64_t at) const {
    auto it = entry.find(key);
    if (it == entry.end()) fail_at(at, "missing \"{}\"", key);
    return *it;
  }

  TensorInfo parse_tensor(const std::string& name, const Json& entry) {
    uint64_t at = entry_offsets_.at(name);
    context_ = fmt::format("tensor '{}'", printable_name(name));
    if (!entry.is_object())
      fail_at(at, "entry is a JSON {}, expected an object", entry.type_name());

    const Json& dtype_json = field(entry, "dtype", at);
    if (!dtype_json.is_string())
      fail_at(at, "dtype is a JSON {}, expected a string", dtype_json.type_name());
    const std::string& dtype_str = dtype_json.get_ref<const std::string&>();
    std::optional<DType> dtype = dtype_from_safetensors(dtype_str);
    if (!dtype)
      fail_at(at, "unknown dtype '{}' (safetensors dtypes: {})", printable_name(dtype_str),
              safetensors_dtype_names());

    const Json& shape = field(entry, "shape", at);
    if (!shape.is_array()) fail_at(at, "shape is a JSON {}, expected an array", shape.type_name());
    TensorInfo info{name, *dtype, {}, 0, 0};
    uint64_t elements = 1;
    for (const Json& dim : shape) {
      uint64_t d = read_count(dim, std::numeric_limits<int64_t>::max(), at, "shape");
      std::optional<uint64_t> product = checked_mul(elements, d);
      if (!product) fail_at(at, "shape has more than 2^64 elements");
      elements = *product;
      info.shape.push_back(static_cast<int64_t>(d));
    }
    std::optional<uint64_t> nbytes = dtype_bytes(*dtype, elements);
    if (!nbytes) fail_at(at, "{} elements of {} overflow a 64-bit byte count", elements, dtype_str);
    info.nbytes = *nbytes;

    const Json& offsets = field(entry, "data_offsets", at);
    if (!offsets.is_array() || offsets.size() != 2)
      fail_at(at, "data_offsets must be [begin, end], found a JSON {} of size {}",
              offsets.type_name(), offsets.size());
    const uint64_t max = std::numeric_limits<uint64_t>::max();
    uint64_t begin = read_count(offsets[0], max, at, "data_offsets");
    uint64_t end = read_count(offsets[1], max, at, "data_offsets");
    if (begin > end) fail_at(at, "data_offsets [{}, {}] begin after end", begin, end);
    if (end - begin != info.nbytes)
      fail_at(at, "data_offsets [{}, {}] hold {} bytes but {} elements of {} need {}", begin, end,
              end - begin, elements, dtype_str, info.nbytes);
    uint64_t data_bytes = file_.size() - data_offset_;
    if (end > data_bytes)
      fail_at(at, "data_offsets [{}, {}] end past the {}-byte data region", begin, end, data_bytes);
    info.offset = data_offset_ + begin;
    context_.clear();
    return info;
  }

  void check_no_overlap(const std::vector<TensorInfo>& tensors, const std::vector<size_t>& order) {
    std::optional<TensorOverlap> overlap = first_overlap(tensors, order);
    if (!overlap) return;
    const TensorInfo& t = tensors[overlap->tensor];
    const TensorInfo& previous = tensors[overlap->earlier];
    context_ = fmt::format("tensor '{}'", printable_name(t.name));
    fail_at(entry_offsets_.at(t.name), "file bytes [{}, {}) overlap tensor '{}' at [{}, {})",
            t.offset, t.offset + t.nbytes, printable_name(previous.name), previous.offset,
            previous.offset + previous.nbytes);
  }

  std::span<const std::byte> file_;
  const std::string& file_name_;
  uint64_t data_offset_ = 0;
  std::string context_;  // the tensor being checked, for messages
  std::unordered_map<std::string, uint64_t> entry_offsets_;  // top-level key → file offset
};

}  // namespace

SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& file_name) {
  return HeaderParser(file, file_name).parse();
}

}  // namespace ebb
