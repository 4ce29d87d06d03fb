#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>

#include "core/checked_math.h"
#include "core/error.h"
#include "io/tensor_overlap.h"
#include "io/utf8_text.h"

namespace ebb {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader copies little-endian fields as they are");

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr std::string_view kMagicText = "47 47 55 46 (\"GGUF\")";
constexpr uint64_t kDefaultAlignment = 32;
constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
// Real files nest arrays at most once or twice; the limit bounds the reader's recursion.
constexpr int kMaxArrayDepth = 8;
// Each value costs about 40 bytes in memory against as little as one in the file; the cap
// keeps a hostile file from turning into tens of gigabytes. Real LLM vocabularies need ~1M.
constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 24;
// Smallest encodings: a key/value is a key length, a value type and a one-byte value; a tensor
// description is a name length, n_dims, a type and an offset.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;

// ggml type ids that Ebb cannot read, named so the user learns what the file holds.
std::string_view unsupported_ggml_type_name(uint32_t id) {
  switch (id) {
    case 4:
      return "Q4_2";
    case 5:
      return "Q4_3";
    case 9:
      return "Q8_1";
    case 16:
      return "IQ2_XXS";
    case 17:
      return "IQ2_XS";
    case 18:
      return "IQ3_XXS";
    case 19:
      return "IQ1_S";
    case 21:
      return "IQ3_S";
    case 22:
      return "IQ2_S";
    case 29:
      return "IQ1_M";
    case 31:
      return "Q4_0_4_4";
    case 32:
      return "Q4_0_4_8";
    case 33:
      return "Q4_0_8_8";
    case 34:
      return "TQ1_0";
    case 35:
      return "TQ2_0";
    case 36:
      return "IQ4_NL_4_4";
    case 37:
      return "IQ4_NL_4_8";
    case 38:
      return "IQ4_NL_8_8";
    case 39:
      return "MXFP4";
    case 40:
      return "NVFP4";
    case 41:
      return "Q1_0";
    default:
      return "";
  }
}

std::string_view value_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8:
      return "u8";
    case GgufType::I8:
      return "i8";
    case GgufType::U16:
      return "u16";
    case GgufType::I16:
      return "i16";
    case GgufType::U32:
      return "u32";
    case GgufType::I32:
      return "i32";
    case GgufType::F32:
      return "f32";
    case GgufType::BOOL:
      return "bool";
    case GgufType::STRING:
      return "string";
    case GgufType::ARRAY:
      return "array";
    case GgufType::U64:
      return "u64";
    case GgufType::I64:
      return "i64";
    case GgufType::F64:
      return "f64";
  }
  return "?";
}

// Bytes the smallest value of type `t` occupies in the file.
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
    case GgufType::STRING:
      return 8;  // a length
    case GgufType::ARRAY:
      return 4 + 8;  // element type and count
  }
  return 1;
}

template <GgufType T, typename V>
GgufValue make_value(V v) {
  GgufValue value;
  value.value.template emplace<static_cast<size_t>(T)>(std::move(v));
  return value;
}

class GgufParser {
 public:
  GgufParser(std::span<const std::byte> file, const std::string& file_name)
      : file_(file), file_name_(file_name) {}

  GgufFile parse() {
    GgufFile gguf;
    gguf.version = read_preamble();
    context_ = "header";
    uint64_t tensor_count = read<uint64_t>("tensor count");
    uint64_t kv_count = read<uint64_t>("key/value count");
    check_counts_fit(tensor_count, kv_count);
    count_values(kv_count, 8);
    for (uint64_t i = 0; i < kv_count; ++i) gguf.metadata.push_back(read_key_value(i));
    gguf.alignment = read_alignment(gguf);

    // No reserve from the counts: each entry is only stored once its bytes were read, so
    // memory grows with the file rather than with whatever a corrupt count claims.
    std::vector<uint64_t> info_offsets;
    for (uint64_t i = 0; i < tensor_count; ++i) {
      info_offsets.push_back(pos_);
      gguf.tensors.push_back(read_tensor_info(i, gguf.alignment));
    }
    context_ = "header";
    std::optional<uint64_t> padded = checked_add(pos_, gguf.alignment - 1);
    if (!padded) fail_at(pos_, "data section offset overflows");
    gguf.data_offset = *padded / gguf.alignment * gguf.alignment;
    place_tensors(gguf, info_offsets);
    return gguf;
  }

 private:
  template <typename... Args>
  [[noreturn]] void fail_at(uint64_t offset, fmt::format_string<Args...> format,
                            Args&&... args) const {
    fail("{}: byte {}: {}{}{}", file_name_, offset, context_, context_.empty() ? "" : ": ",
         fmt::format(format, std::forward<Args>(args)...));
  }

  uint64_t remaining() const { return file_.size() - pos_; }

  void need(uint64_t bytes, std::string_view what) const {
    if (bytes > remaining())
      fail_at(pos_, "file ends inside the {} ({} bytes needed, {} remain)", what, bytes,
              remaining());
  }

  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, file_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  std::string read_string(std::string_view what) {
    uint64_t at = pos_;
    uint64_t length = read<uint64_t>(what);
    if (length > remaining())
      fail_at(at, "{} length {} runs past the end of the file ({} bytes remain)", what, length,
              remaining());
    std::string s(reinterpret_cast<const char*>(file_.data()) + pos_, length);
    pos_ += length;
    return s;
  }

  std::string read_name(std::string_view what) {
    uint64_t at = pos_;
    std::string name = read_string(what);
    if (!is_valid_utf8(name))
      fail_at(at, "{} \"{}\" is not valid UTF-8", what, printable_name(name));
    return name;
  }

  uint32_t read_preamble() {
    if (file_.size() < sizeof(kMagic))
      fail_at(0, "file is {} bytes, too short for the GGUF magic", file_.size());
    if (std::memcmp(file_.data(), kMagic, sizeof(kMagic)) != 0) {
      auto b = [&](int i) { return static_cast<unsigned>(file_[i]); };
      fail_at(0, "not a GGUF file: it starts with {:02x} {:02x} {:02x} {:02x} (\"{}\"), not {}",
              b(0), b(1), b(2), b(3),
              printable_name({reinterpret_cast<const char*>(file_.data()), sizeof(kMagic)}),
              kMagicText);
    }
    pos_ = sizeof(kMagic);
    uint64_t at = pos_;
    uint32_t version = read<uint32_t>("version");
    if (version == 2 || version == 3) return version;
    uint32_t swapped = __builtin_bswap32(version);
    if (swapped >= 1 && swapped <= 3)
      fail_at(at, "unsupported GGUF version {} (a big-endian GGUF {}? only little-endian is read)",
              version, swapped);
    fail_at(at, "unsupported GGUF version {} (Ebb reads versions 2 and 3)", version);
  }

  // Counts are checked against the bytes left before anything is sized by them, so a corrupt
  // count fails here instead of in a giant allocation or a long loop.
  void check_counts_fit(uint64_t tensor_count, uint64_t kv_count) const {
    std::optional<uint64_t> kv_bytes = checked_mul(kv_count, kMinKeyValueBytes);
    std::optional<uint64_t> info_bytes = checked_mul(tensor_count, kMinTensorInfoBytes);
    std::optional<uint64_t> total =
        kv_bytes && info_bytes ? checked_add(*kv_bytes, *info_bytes) : std::nullopt;
    if (!total || *total > remaining())
      fail_at(8, "{} tensors and {} key/values cannot fit in the {} bytes after the counts",
              tensor_count, kv_count, remaining());
  }

  void count_values(uint64_t count, uint64_t at) {
    values_read_ += count;
    if (values_read_ > kMaxMetadataValues)
      fail_at(at, "metadata holds more than {} values, Ebb's limit", kMaxMetadataValues);
  }

  GgufType read_value_type(std::string_view what) {
    uint64_t at = pos_;
    uint32_t id = read<uint32_t>(what);
    if (id > static_cast<uint32_t>(GgufType::F64)) fail_at(at, "unknown {} {}", what, id);
    return static_cast<GgufType>(id);
  }

  std::pair<std::string, GgufValue> read_key_value(uint64_t index) {
    uint64_t at = pos_;
    context_ = fmt::format("key/value #{}", index);
    std::string key = read_name("key");
    context_ = fmt::format("key '{}'", printable_name(key));
    auto [first, inserted] = key_offsets_.emplace(key, at);
    if (!inserted) fail_at(at, "duplicate key (first at byte {})", first->second);
    GgufValue value = read_value(read_value_type("value type"), 0);
    return {std::move(key), std::move(value)};
  }

  GgufValue read_value(GgufType type, int depth) {
    switch (type) {
      case GgufType::U8:
        return make_value<GgufType::U8>(read<uint8_t>("u8"));
      case GgufType::I8:
        return make_value<GgufType::I8>(read<int8_t>("i8"));
      case GgufType::U16:
        return make_value<GgufType::U16>(read<uint16_t>("u16"));
      case GgufType::I16:
        return make_value<GgufType::I16>(read<int16_t>("i16"));
      case GgufType::U32:
        return make_value<GgufType::U32>(read<uint32_t>("u32"));
      case GgufType::I32:
        return make_value<GgufType::I32>(read<int32_t>("i32"));
      case GgufType::F32:
        return make_value<GgufType::F32>(read<float>("f32"));
      case GgufType::BOOL:
        return make_value<GgufType::BOOL>(read<uint8_t>("bool") != 0);
      case GgufType::STRING:
        return make_value<GgufType::STRING>(read_string("string"));
      case GgufType::ARRAY:
        return make_value<GgufType::ARRAY>(read_array(depth));
      case GgufType::U64:
        return make_value<GgufType::U64>(read<uint64_t>("u64"));
      case GgufType::I64:
        return make_value<GgufType::I64>(read<int64_t>("i64"));
      case GgufType::F64:
        return make_value<GgufType::F64>(read<double>("f64"));
    }
    fail_at(pos_, "unknown value type {}", static_cast<uint32_t>(type));
  }

  GgufArray read_array(int depth) {
    uint64_t at = pos_;
    if (depth >= kMaxArrayDepth) fail_at(at, "arrays nested deeper than {}", kMaxArrayDepth);
    GgufArray array;
    array.element_type = read_value_type("array element type");
    uint64_t count = read<uint64_t>("array length");
    uint64_t min_bytes = min_value_bytes(array.element_type);
    if (count > remaining() / min_bytes)
      fail_at(at, "array of {} {} values cannot fit in the {} bytes that remain", count,
              value_type_name(array.element_type), remaining());
    count_values(count, at);
    for (uint64_t i = 0; i < count; ++i)
      array.items.push_back(read_value(array.element_type, depth + 1));
    return array;
  }

  uint64_t read_alignment(const GgufFile& gguf) {
    const GgufValue* value = gguf.find(kAlignmentKey);
    if (!value) return kDefaultAlignment;
    uint64_t at = key_offsets_.at(std::string(kAlignmentKey));
    context_ = fmt::format("key '{}'", kAlignmentKey);
    if (value->type() != GgufType::U32)
      fail_at(at, "type is {}, expected u32", value_type_name(value->type()));
    uint32_t alignment = std::get<uint32_t>(value->value);
    if (!std::has_single_bit(alignment)) fail_at(at, "{} is not a nonzero power of two", alignment);
    return alignment;
  }

  TensorInfo read_tensor_info(uint64_t index, uint64_t alignment) {
    uint64_t at = pos_;
    context_ = fmt::format("tensor #{}", index);
    TensorInfo info;
    info.name = read_name("tensor name");
    context_ = fmt::format("tensor '{}'", printable_name(info.name));
    auto [first, inserted] = tensor_offsets_.emplace(info.name, at);
    if (!inserted) fail_at(at, "duplicate tensor name (first at byte {})", first->second);

    uint32_t n_dims = read<uint32_t>("n_dims");
    if (n_dims > kMaxDims) fail_at(at, "{} dimensions, at most {} allowed", n_dims, kMaxDims);
    uint64_t ne[kMaxDims] = {1, 1, 1, 1};
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = read<uint64_t>("dimensions");
      std::optional<uint64_t> product = checked_mul(elements, ne[d]);
      if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || !product)
        fail_at(at, "dimension {} = {} overflows the element count", d, ne[d]);
      elements = *product;
    }
    for (uint32_t d = n_dims; d-- > 0;) info.shape.push_back(static_cast<int64_t>(ne[d]));

    uint64_t type_at = pos_;
    uint32_t type = read<uint32_t>("ggml type");
    std::optional<DType> dtype = dtype_from_ggml(type);
    if (!dtype) {
      std::string_view name = unsupported_ggml_type_name(type);
      if (name.empty()) fail_at(type_at, "unknown ggml type {}", type);
      fail_at(type_at, "unsupported ggml type {} ({})", type, name);
    }
    info.dtype = *dtype;
    uint32_t block = dtype_info(info.dtype).block_elems;
    if (ne[0] % block != 0)
      fail_at(at, "row length ne[0] = {} is not a multiple of {}'s block of {}", ne[0],
              dtype_name(info.dtype), block);
    std::optional<uint64_t> nbytes = dtype_bytes(info.dtype, elements);
    if (!nbytes)
      fail_at(at, "{} elements of {} overflow a 64-bit byte count", elements,
              dtype_name(info.dtype));
    info.nbytes = *nbytes;

    uint64_t offset_at = pos_;
    info.offset = read<uint64_t>("data offset");
    if (info.offset % alignment != 0)
      fail_at(offset_at, "data offset {} is not a multiple of the alignment {}", info.offset,
              alignment);
    return info;
  }

  // Turns relative offsets into absolute ones and checks every tensor lies inside the file
  // and apart from the others.
  void place_tensors(GgufFile& gguf, const std::vector<uint64_t>& info_offsets) {
    for (size_t i = 0; i < gguf.tensors.size(); ++i) {
      TensorInfo& t = gguf.tensors[i];
      context_ = fmt::format("tensor '{}'", printable_name(t.name));
      std::optional<uint64_t> begin = checked_add(gguf.data_offset, t.offset);
      std::optional<uint64_t> end = begin ? checked_add(*begin, t.nbytes) : std::nullopt;
      if (!end || *end > file_.size())
        fail_at(info_offsets[i],
                "data (offset {} in the data section at byte {}, {} bytes) lies past the end of "
                "the file ({} bytes)",
                t.offset, gguf.data_offset, t.nbytes, file_.size());
      t.offset = *begin;
    }
    const std::vector<size_t> order = order_by_offset(gguf.tensors);
    if (std::optional<TensorOverlap> overlap = first_overlap(gguf.tensors, order)) {
      const TensorInfo& t = gguf.tensors[overlap->tensor];
      const TensorInfo& previous = gguf.tensors[overlap->earlier];
      context_ = fmt::format("tensor '{}'", printable_name(t.name));
      fail_at(info_offsets[overlap->tensor], "data [{}, {}) overlaps tensor '{}' at [{}, {})",
              t.offset, t.offset + t.nbytes, printable_name(previous.name), previous.offset,
              previous.offset + previous.nbytes);
    }
  }

  std::span<const std::byte> file_;
  const std::string& file_name_;
  uint64_t pos_ = 0;
  std::string context_;  // what is being read, for messages: "key 'x'", "tensor 'y'"
  uint64_t values_read_ = 0;
  std::unordered_map<std::string, uint64_t> key_offsets_;     // key → file offset
  std::unordered_map<std::string, uint64_t> tensor_offsets_;  // name → file offset
};

}  // namespace

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

GgufFile parse_gguf(std::span<const std::byte> file, const std::string& file_name) {
  return GgufParser(file, file_name).parse();
}

}  // namespace ebb
