#include "io/gguf_writer.h"

#include <bit>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <unordered_set>

#include "core/checked_math.h"
#include "core/error.h"

namespace ebb {
namespace {

static_assert(std::endian::native == std::endian::little, "GGUF is written little-endian");

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kVersion = 3;
constexpr uint32_t kDefaultAlignment = 32;
constexpr size_t kMaxDims = 4;  // GGML_MAX_DIMS: readers reject more
constexpr const char* kAlignmentKey = "general.alignment";

class HeaderBytes {
 public:
  template <typename T>
  void scalar(T value) {
    static_assert(std::is_arithmetic_v<T>);
    append(&value, sizeof(value));
  }
  void string(std::string_view text) {
    scalar<uint64_t>(text.size());
    append(text.data(), text.size());
  }
  void zeros(size_t count) { bytes_.resize(bytes_.size() + count, std::byte{0}); }
  uint64_t size() const { return bytes_.size(); }
  std::span<const std::byte> bytes() const { return bytes_; }

 private:
  void append(const void* data, size_t count) {
    const size_t at = bytes_.size();
    bytes_.resize(at + count);
    if (count > 0) std::memcpy(bytes_.data() + at, data, count);
  }

  std::vector<std::byte> bytes_;
};

uint64_t align_up(const std::string& path, uint64_t value, uint32_t alignment) {
  auto sum = checked_add(value, alignment - 1);
  if (!sum) fail("writing {}: the tensor data exceed 64-bit sizes", path);
  return *sum / alignment * alignment;
}

void write_payload(HeaderBytes& out, const GgufValue& value, const std::string& key);

void write_array(HeaderBytes& out, const GgufArray& array, const std::string& key) {
  if (static_cast<uint32_t>(array.element_type) > static_cast<uint32_t>(GgufType::F64))
    fail("metadata {}: invalid array element type {}", key,
         static_cast<uint32_t>(array.element_type));
  out.scalar(static_cast<uint32_t>(array.element_type));
  out.scalar<uint64_t>(array.items.size());
  for (const GgufValue& item : array.items) {
    if (item.type() != array.element_type)
      fail("metadata {}: an array of type {} holds an item of type {}", key,
           static_cast<uint32_t>(array.element_type), static_cast<uint32_t>(item.type()));
    write_payload(out, item, key);
  }
}

void write_payload(HeaderBytes& out, const GgufValue& value, const std::string& key) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          out.string(v);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          write_array(out, v, key);
        } else if constexpr (std::is_same_v<T, bool>) {
          out.scalar<uint8_t>(v ? 1 : 0);
        } else {
          out.scalar(v);
        }
      },
      value.value);
}

void write_key_value(HeaderBytes& out, const std::string& key, const GgufValue& value) {
  out.string(key);
  out.scalar(static_cast<uint32_t>(value.type()));
  write_payload(out, value, key);
}

// Checks the alignment key if the caller passed one; returns whether it is present.
bool check_alignment_key(const std::string& path, const GgufMetadata& metadata,
                         uint32_t alignment) {
  for (const auto& [key, value] : metadata) {
    if (key != kAlignmentKey) continue;
    const auto* stored = std::get_if<uint32_t>(&value.value);
    if (stored == nullptr || *stored != alignment)
      fail("writing {}: metadata {} must be the u32 {} (the alignment argument)", path, key,
           alignment);
    return true;
  }
  return false;
}

}  // namespace

void write_gguf(const std::string& path, const std::vector<TensorToWrite>& tensors,
                const GgufMetadata& metadata, uint32_t alignment, bool overwrite) {
  if (alignment < 8 || alignment % 8 != 0 || !std::has_single_bit(alignment))
    fail("writing {}: alignment {} is not a power of two and a multiple of 8", path, alignment);
  const bool add_alignment_key =
      !check_alignment_key(path, metadata, alignment) && alignment != kDefaultAlignment;

  HeaderBytes header;
  header.scalar(kMagic);
  header.scalar(kVersion);
  header.scalar<uint64_t>(tensors.size());
  header.scalar<uint64_t>(metadata.size() + (add_alignment_key ? 1 : 0));

  std::unordered_set<std::string> keys;
  for (const auto& [key, value] : metadata) {
    if (key.empty()) fail("writing {}: empty metadata key", path);
    if (!keys.insert(key).second) fail("writing {}: duplicate metadata key {}", path, key);
    write_key_value(header, key, value);
  }
  if (add_alignment_key) write_key_value(header, kAlignmentKey, GgufValue{alignment});

  std::unordered_set<std::string> names;
  std::vector<TensorPlacement> placements;
  uint64_t data_bytes = 0;
  for (const TensorToWrite& t : tensors) {
    if (t.name.empty()) fail("writing {}: empty tensor name", path);
    if (!names.insert(t.name).second) fail("writing {}: duplicate tensor {}", path, t.name);
    auto ggml_type = dtype_to_ggml(t.dtype);
    if (!ggml_type)
      fail("writing {}: tensor {} has type {}, which GGUF cannot store", path, t.name,
           dtype_name(t.dtype));
    if (t.shape.size() > kMaxDims)
      fail("writing {}: tensor {} has {} dimensions; GGUF readers take at most {}", path, t.name,
           t.shape.size(), kMaxDims);
    const DTypeInfo& info = dtype_info(t.dtype);
    if (info.quantized && (t.shape.empty() || t.shape.back() % info.block_elems != 0))
      fail(
          "writing {}: tensor {} is {}, which needs an innermost dimension that is a multiple "
          "of {}; its shape ends in {}",
          path, t.name, info.name, info.block_elems, t.shape.empty() ? 0 : t.shape.back());
    const uint64_t nbytes = tensor_nbytes(t);
    const uint64_t offset = align_up(path, data_bytes, alignment);
    auto end = checked_add(offset, nbytes);
    if (!end) fail("writing {}: the tensor data exceed 64-bit sizes", path);
    placements.push_back({offset, nbytes});
    data_bytes = *end;

    header.string(t.name);
    header.scalar(static_cast<uint32_t>(t.shape.size()));
    for (auto dim = t.shape.rbegin(); dim != t.shape.rend(); ++dim)
      header.scalar(static_cast<uint64_t>(*dim));
    header.scalar(*ggml_type);
    header.scalar(offset);
  }
  // Readers may map the last tensor with its padding, as writers pad after every tensor.
  data_bytes = align_up(path, data_bytes, alignment);
  header.zeros(align_up(path, header.size(), alignment) - header.size());

  AtomicFile file = AtomicFile::create(path, overwrite);
  file.write(header.bytes());
  write_tensor_data(file, tensors, placements, data_bytes);
  file.commit();
}

}  // namespace ebb
