#include "io/gguf.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/expect_error.h"

#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;

const std::string kFile = "test.gguf";

// --- an independent GGUF encoder for building test files ---------------------------------------

template <GgufType T, typename V>
GgufValue make(V v) {
  GgufValue value;
  value.value.template emplace<static_cast<size_t>(T)>(std::move(v));
  return value;
}

GgufValue array(GgufType element_type, std::vector<GgufValue> items) {
  return make<GgufType::ARRAY>(GgufArray{element_type, std::move(items)});
}

struct Bytes {
  std::vector<std::byte> data;

  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    data.insert(data.end(), b, b + n);
  }
  template <typename T>
  void put(T v) {
    raw(&v, sizeof v);
  }
  void str(std::string_view s) {
    put<uint64_t>(s.size());
    raw(s.data(), s.size());
  }
  void value(const GgufValue& v) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            str(x);
          } else if constexpr (std::is_same_v<T, GgufArray>) {
            put(static_cast<uint32_t>(x.element_type));
            put<uint64_t>(x.items.size());
            for (const GgufValue& item : x.items) value(item);
          } else if constexpr (std::is_same_v<T, bool>) {
            put<uint8_t>(x ? 1 : 0);
          } else {
            put(x);
          }
        },
        v.value);
  }
};

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // innermost first, as GGUF stores it
  uint32_t ggml_type;
  uint64_t offset;  // relative to the data section
};

struct GgufSpec {
  uint32_t version = 3;
  GgufMetadata metadata;
  std::vector<TensorSpec> tensors;
  uint64_t alignment = 32;  // the padding the encoder writes
  uint64_t data_bytes = 0;
};

struct Encoded {
  std::vector<std::byte> file;
  std::vector<uint64_t> kv_at;      // where each key/value starts
  std::vector<uint64_t> tensor_at;  // where each tensor description starts
  uint64_t data_offset = 0;
};

Encoded encode(const GgufSpec& spec) {
  Encoded out;
  Bytes b;
  b.raw("GGUF", 4);
  b.put(spec.version);
  b.put<uint64_t>(spec.tensors.size());
  b.put<uint64_t>(spec.metadata.size());
  for (const auto& [key, value] : spec.metadata) {
    out.kv_at.push_back(b.data.size());
    b.str(key);
    b.put(static_cast<uint32_t>(value.type()));
    b.value(value);
  }
  for (const TensorSpec& t : spec.tensors) {
    out.tensor_at.push_back(b.data.size());
    b.str(t.name);
    b.put<uint32_t>(t.ne.size());
    for (uint64_t d : t.ne) b.put(d);
    b.put(t.ggml_type);
    b.put(t.offset);
  }
  while (b.data.size() % spec.alignment != 0) b.put<uint8_t>(0);
  out.data_offset = b.data.size();
  b.data.resize(b.data.size() + spec.data_bytes, std::byte{0x5A});
  out.file = std::move(b.data);
  return out;
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type() != b.type()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(b.value);
        if constexpr (std::is_same_v<T, GgufArray>) {
          if (x.element_type != y.element_type || x.items.size() != y.items.size()) return false;
          for (size_t i = 0; i < x.items.size(); ++i)
            if (!same_value(x.items[i], y.items[i])) return false;
          return true;
        } else {
          return x == y;
        }
      },
      a.value);
}

void expect_same_metadata(const GgufMetadata& actual, const GgufMetadata& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_EQ(actual[i].first, expected[i].first);
    EXPECT_TRUE(same_value(actual[i].second, expected[i].second)) << expected[i].first;
  }
}

GgufFile parse(const std::vector<std::byte>& file) {
  return parse_gguf(file, kFile);
}

void expect_error(const std::vector<std::byte>& file,
                  std::initializer_list<std::string> fragments) {
  std::vector<std::string> all{kFile};
  all.insert(all.end(), fragments.begin(), fragments.end());
  test::expect_error_with([&] { parse(file); }, all);
}

std::string at(uint64_t offset) {
  return fmt::format("byte {}:", offset);
}

template <typename T>
void patch(std::vector<std::byte>& file, uint64_t offset, T value) {
  std::memcpy(file.data() + offset, &value, sizeof value);
}

uint32_t ggml(DType t) {
  return *dtype_to_ggml(t);
}

// Metadata with every value type, arrays of each, and arrays of arrays.
GgufMetadata every_value_type() {
  GgufMetadata m = {
      {"u8", make<GgufType::U8>(uint8_t{200})},
      {"i8", make<GgufType::I8>(int8_t{-100})},
      {"u16", make<GgufType::U16>(uint16_t{60000})},
      {"i16", make<GgufType::I16>(int16_t{-30000})},
      {"u32", make<GgufType::U32>(uint32_t{4000000000u})},
      {"i32", make<GgufType::I32>(int32_t{-2000000000})},
      {"f32", make<GgufType::F32>(-0.15625f)},
      {"bool", make<GgufType::BOOL>(true)},
      {"string", make<GgufType::STRING>(std::string("caf\xc3\xa9"))},
      {"u64", make<GgufType::U64>(uint64_t{18000000000000000000u})},
      {"i64", make<GgufType::I64>(int64_t{-9000000000000000000})},
      {"f64", make<GgufType::F64>(3.141592653589793)},
      {"empty", array(GgufType::F32, {})},
  };
  GgufMetadata scalars(m.begin(), m.begin() + 12);
  for (const auto& [key, value] : scalars)
    m.emplace_back("array." + key, array(value.type(), {value, value}));
  m.emplace_back(
      "nested",
      array(GgufType::ARRAY, {array(GgufType::STRING, {make<GgufType::STRING>(std::string("a"))}),
                              array(GgufType::ARRAY, {array(GgufType::U8, {})})}));
  return m;
}

// --- valid files -------------------------------------------------------------------------------

TEST(Gguf, ReadsEveryValueTypeInVersions2And3) {
  for (uint32_t version : {2u, 3u}) {
    GgufSpec spec;
    spec.version = version;
    spec.metadata = every_value_type();
    GgufFile g = parse(encode(spec).file);
    EXPECT_EQ(g.version, version);
    expect_same_metadata(g.metadata, spec.metadata);
    EXPECT_EQ(g.alignment, 32u);
    ASSERT_NE(g.find("f64"), nullptr);
    EXPECT_EQ(std::get<double>(g.find("f64")->value), 3.141592653589793);
    EXPECT_EQ(g.find("missing"), nullptr);
  }
}

TEST(Gguf, ReadsEveryGgmlTypeWithReversedShapes) {
  GgufSpec spec;
  std::vector<DType> dtypes;
  uint64_t offset = 0;
  for (int i = 0; i < kDTypeCount; ++i) {
    if (!dtype_to_ggml(DType(i))) continue;
    DType t = DType(i);
    dtypes.push_back(t);
    uint64_t row = 2 * dtype_info(t).block_elems;
    spec.tensors.push_back({fmt::format("t.{}", dtype_name(t)), {row, 3, 1}, ggml(t), offset});
    offset += (*dtype_bytes(t, row * 3) + 31) / 32 * 32;
  }
  spec.data_bytes = offset;
  Encoded e = encode(spec);
  GgufFile g = parse(e.file);
  EXPECT_EQ(g.data_offset, e.data_offset);
  ASSERT_EQ(g.tensors.size(), dtypes.size());
  for (size_t i = 0; i < dtypes.size(); ++i) {
    const TensorInfo& t = g.tensors[i];
    int64_t row = 2 * dtype_info(dtypes[i]).block_elems;
    EXPECT_EQ(t.name, spec.tensors[i].name);
    EXPECT_EQ(t.dtype, dtypes[i]);
    EXPECT_EQ(t.shape, (std::vector<int64_t>{1, 3, row}));
    EXPECT_EQ(t.offset, e.data_offset + spec.tensors[i].offset);
    EXPECT_EQ(t.nbytes, *dtype_bytes(dtypes[i], 3 * row));
  }
}

TEST(Gguf, CustomAlignmentAndFileOrder) {
  for (uint32_t alignment : {1u, 8u, 64u, 4096u}) {
    GgufSpec spec;
    spec.alignment = alignment;
    spec.metadata = {{"general.alignment", make<GgufType::U32>(alignment)}};
    spec.tensors = {{"later", {4}, ggml(DType::F32), 4 * alignment},
                    {"scalar", {}, ggml(DType::F16), 0},
                    {"empty", {0, 7}, ggml(DType::Q8_0), alignment}};
    spec.data_bytes = 4 * alignment + 16;
    Encoded e = encode(spec);
    GgufFile g = parse(e.file);
    EXPECT_EQ(g.alignment, alignment);
    EXPECT_EQ(g.data_offset, e.data_offset);
    EXPECT_EQ(g.data_offset % alignment, 0u);
    ASSERT_EQ(g.tensors.size(), 3u);
    EXPECT_EQ(g.tensors[0].name, "later");
    EXPECT_EQ(g.tensors[0].offset, e.data_offset + 4 * alignment);
    EXPECT_TRUE(g.tensors[1].shape.empty());
    EXPECT_EQ(g.tensors[1].nbytes, 2u);
    EXPECT_EQ(g.tensors[2].shape, (std::vector<int64_t>{7, 0}));
    EXPECT_EQ(g.tensors[2].nbytes, 0u);
  }
}

GgufValue random_value(std::mt19937_64& rng, GgufType type, int depth) {
  switch (type) {
    case GgufType::U8:
      return make<GgufType::U8>(static_cast<uint8_t>(rng()));
    case GgufType::I8:
      return make<GgufType::I8>(static_cast<int8_t>(rng()));
    case GgufType::U16:
      return make<GgufType::U16>(static_cast<uint16_t>(rng()));
    case GgufType::I16:
      return make<GgufType::I16>(static_cast<int16_t>(rng()));
    case GgufType::U32:
      return make<GgufType::U32>(static_cast<uint32_t>(rng()));
    case GgufType::I32:
      return make<GgufType::I32>(static_cast<int32_t>(rng()));
    case GgufType::F32:
      return make<GgufType::F32>(static_cast<float>(rng() % 1000) / 8);
    case GgufType::BOOL:
      return make<GgufType::BOOL>(rng() % 2 == 0);
    case GgufType::STRING:
      return make<GgufType::STRING>(std::string(rng() % 5, 'x'));
    case GgufType::U64:
      return make<GgufType::U64>(static_cast<uint64_t>(rng()));
    case GgufType::I64:
      return make<GgufType::I64>(static_cast<int64_t>(rng()));
    case GgufType::F64:
      return make<GgufType::F64>(static_cast<double>(rng() % 1000) / 3);
    case GgufType::ARRAY:
      break;
  }
  auto element = static_cast<GgufType>(rng() % (depth < 3 ? 13 : 9));
  if (element == GgufType::ARRAY && depth >= 3) element = GgufType::U8;
  std::vector<GgufValue> items;
  for (uint64_t n = rng() % 4; n > 0; --n) items.push_back(random_value(rng, element, depth + 1));
  return array(element, std::move(items));
}

// Random metadata trees and tensor tables: the parse must give back exactly what was encoded.
TEST(Gguf, RandomValidFilesRoundTrip) {
  std::mt19937_64 rng(11);
  std::vector<DType> dtypes;
  for (int i = 0; i < kDTypeCount; ++i)
    if (dtype_to_ggml(DType(i))) dtypes.push_back(DType(i));
  for (int round = 0; round < 200; ++round) {
    GgufSpec spec;
    spec.version = 2 + rng() % 2;
    spec.alignment = uint64_t{1} << (rng() % 9);
    if (spec.alignment != 32 || rng() % 2)
      spec.metadata.emplace_back("general.alignment",
                                 make<GgufType::U32>(static_cast<uint32_t>(spec.alignment)));
    for (int k = static_cast<int>(rng() % 6); k > 0; --k)
      spec.metadata.emplace_back(fmt::format("key.{}", k),
                                 random_value(rng, static_cast<GgufType>(rng() % 13), 0));
    uint64_t offset = 0;
    for (int i = static_cast<int>(rng() % 6); i > 0; --i) {
      DType t = dtypes[rng() % dtypes.size()];
      std::vector<uint64_t> ne;
      for (int d = static_cast<int>(rng() % 5); d > 0; --d) ne.push_back(1 + rng() % 3);
      if (!ne.empty()) ne[0] *= dtype_info(t).block_elems;
      if (ne.empty() && dtype_info(t).quantized) ne.push_back(dtype_info(t).block_elems);
      uint64_t elements = 1;
      for (uint64_t d : ne) elements *= d;
      offset += spec.alignment * (rng() % 2);
      spec.tensors.push_back({fmt::format("tensor.{}", i), ne, ggml(t), offset});
      offset += (*dtype_bytes(t, elements) + spec.alignment - 1) / spec.alignment * spec.alignment;
    }
    spec.data_bytes = offset;
    Encoded e = encode(spec);
    GgufFile g = parse(e.file);
    EXPECT_EQ(g.version, spec.version);
    EXPECT_EQ(g.alignment, spec.alignment);
    EXPECT_EQ(g.data_offset, e.data_offset);
    expect_same_metadata(g.metadata, spec.metadata);
    ASSERT_EQ(g.tensors.size(), spec.tensors.size());
    for (size_t i = 0; i < spec.tensors.size(); ++i) {
      const TensorSpec& s = spec.tensors[i];
      std::vector<int64_t> shape(s.ne.rbegin(), s.ne.rend());
      EXPECT_EQ(g.tensors[i].name, s.name);
      EXPECT_EQ(*dtype_to_ggml(g.tensors[i].dtype), s.ggml_type);
      EXPECT_EQ(g.tensors[i].shape, shape);
      EXPECT_EQ(g.tensors[i].offset, e.data_offset + s.offset);
    }
  }
}

TEST(Gguf, MatchesThePythonPackage) {
  std::string path = EBB_TEST_DATA_DIR "/io/reference.gguf";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path;
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> file(chars.size());
  std::memcpy(file.data(), chars.data(), chars.size());
  std::ifstream json_in(path + ".json");
  nlohmann::json expected = nlohmann::json::parse(json_in);

  GgufFile g = parse_gguf(file, path);
  EXPECT_EQ(g.version, expected["version"].get<uint32_t>());
  EXPECT_EQ(g.alignment, expected["alignment"].get<uint64_t>());
  EXPECT_EQ(g.data_offset, expected["data_offset"].get<uint64_t>());

  std::function<void(const GgufValue&, const nlohmann::json&)> check_value =
      [&](const GgufValue& v, const nlohmann::json& e) {
        static const char* kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
        ASSERT_EQ(kNames[static_cast<int>(v.type())], e["type"].get<std::string>());
        std::visit(
            [&](const auto& x) {
              using T = std::decay_t<decltype(x)>;
              if constexpr (std::is_same_v<T, GgufArray>) {
                EXPECT_EQ(kNames[static_cast<int>(x.element_type)], e["element_type"]);
                ASSERT_EQ(x.items.size(), e["items"].size());
                for (size_t i = 0; i < x.items.size(); ++i) check_value(x.items[i], e["items"][i]);
              } else {
                EXPECT_EQ(x, e["value"].get<T>());
              }
            },
            v.value);
      };
  ASSERT_EQ(g.metadata.size(), expected["metadata"].size());
  for (size_t i = 0; i < g.metadata.size(); ++i) {
    SCOPED_TRACE(g.metadata[i].first);
    EXPECT_EQ(g.metadata[i].first, expected["metadata"][i]["key"].get<std::string>());
    check_value(g.metadata[i].second, expected["metadata"][i]);
  }

  ASSERT_EQ(g.tensors.size(), expected["tensors"].size());
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const nlohmann::json& e = expected["tensors"][i];
    const TensorInfo& t = g.tensors[i];
    EXPECT_EQ(t.name, e["name"].get<std::string>());
    EXPECT_EQ(dtype_name(t.dtype), e["dtype"].get<std::string>());
    std::vector<int64_t> ne = e["ne"].get<std::vector<int64_t>>();
    EXPECT_EQ(t.shape, std::vector<int64_t>(ne.rbegin(), ne.rend())) << t.name;
    EXPECT_EQ(t.offset, e["offset"].get<uint64_t>()) << t.name;
    EXPECT_EQ(t.nbytes, e["nbytes"].get<uint64_t>()) << t.name;
  }
}

// --- malformed files ---------------------------------------------------------------------------

GgufSpec one_tensor() {
  GgufSpec spec;
  spec.metadata = {{"general.name", make<GgufType::STRING>(std::string("m"))}};
  spec.tensors = {{"w", {8, 2}, ggml(DType::F32), 0}};
  spec.data_bytes = 64;
  return spec;
}

TEST(GgufErrors, BadMagic) {
  std::vector<std::byte> file = encode(one_tensor()).file;
  std::memcpy(file.data(), "GGML", 4);
  expect_error(file, {at(0), "starts with 47 47 4d 4c (\"GGML\"), not 47 47 55 46 (\"GGUF\")"});
  expect_error(std::vector<std::byte>(3), {at(0), "3 bytes"});
}

TEST(GgufErrors, UnsupportedVersions) {
  std::vector<std::byte> file = encode(one_tensor()).file;
  patch<uint32_t>(file, 4, 1);
  expect_error(file, {at(4), "unsupported GGUF version 1"});
  patch<uint32_t>(file, 4, 4);
  expect_error(file, {at(4), "unsupported GGUF version 4"});
  patch<uint32_t>(file, 4, 0x03000000);
  expect_error(file, {"big-endian"});
}

// Cutting a valid file anywhere before its last tensor byte must give an error, never a read
// past the end.
TEST(GgufErrors, EveryTruncationIsAnError) {
  GgufSpec spec;
  spec.metadata = every_value_type();
  spec.tensors = {{"a", {32, 2}, ggml(DType::Q8_0), 0}, {"b", {3}, ggml(DType::F32), 96}};
  spec.data_bytes = 96 + 12;
  std::vector<std::byte> file = encode(spec).file;
  ASSERT_NO_THROW(parse(file));
  for (size_t n = 0; n < file.size(); ++n) {
    std::vector<std::byte> prefix(file.begin(), file.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_THROW(parse(prefix), Error) << n;
  }
}

TEST(GgufErrors, HugeCountsFailBeforeAllocating) {
  std::vector<std::byte> file = encode(one_tensor()).file;
  patch<uint64_t>(file, 8, uint64_t{1} << 63);
  expect_error(file, {at(8), "header", "9223372036854775808 tensors", "cannot fit"});
  file = encode(one_tensor()).file;
  patch<uint64_t>(file, 16, ~uint64_t{0});
  expect_error(file, {at(8), "18446744073709551615 key/values", "cannot fit"});
}

TEST(GgufErrors, HugeStringAndArrayLengths) {
  GgufSpec spec = one_tensor();
  Encoded e = encode(spec);
  std::vector<std::byte> file = e.file;
  patch<uint64_t>(file, e.kv_at[0], uint64_t{1} << 63);
  expect_error(file,
               {at(e.kv_at[0]), "key/value #0", "key length 9223372036854775808", "past the end"});
  file = e.file;
  uint64_t value_at = e.kv_at[0] + 8 + 12 + 4;  // key length, "general.name", value type
  patch<uint64_t>(file, value_at, uint64_t{1} << 62);
  expect_error(file, {at(value_at), "key 'general.name'", "string length 4611686018427387904"});

  spec.metadata = {{"arr", array(GgufType::U64, {make<GgufType::U64>(uint64_t{1})})}};
  e = encode(spec);
  uint64_t array_at = e.kv_at[0] + 8 + 3 + 4;
  patch<uint64_t>(e.file, array_at + 4, uint64_t{1} << 61);
  expect_error(
      e.file, {at(array_at), "key 'arr'", "array of 2305843009213693952 u64 values", "cannot fit"});
}

TEST(GgufErrors, TooManyMetadataValues) {
  GgufSpec spec;
  spec.metadata = {{"big", array(GgufType::U8, {})}};
  Encoded e = encode(spec);
  uint64_t count = (uint64_t{1} << 24) + 1;
  e.file.resize(e.file.size() + count);
  patch<uint64_t>(e.file, e.kv_at[0] + 8 + 3 + 4 + 4, count);
  expect_error(e.file, {"key 'big'", "more than 16777216 values"});
}

TEST(GgufErrors, BadValueTypes) {
  GgufSpec spec;
  spec.metadata = {{"k", make<GgufType::U8>(uint8_t{1})}};
  Encoded e = encode(spec);
  patch<uint32_t>(e.file, e.kv_at[0] + 9, 13);
  expect_error(e.file, {at(e.kv_at[0] + 9), "key 'k'", "unknown value type 13"});

  spec.metadata = {{"k", array(GgufType::U8, {})}};
  e = encode(spec);
  patch<uint32_t>(e.file, e.kv_at[0] + 13, 99);
  expect_error(e.file, {"key 'k'", "unknown array element type 99"});
}

TEST(GgufErrors, DeepNesting) {
  GgufValue v = array(GgufType::U8, {});
  for (int i = 0; i < 7; ++i) v = array(GgufType::ARRAY, {v});
  GgufSpec spec;
  spec.metadata = {{"deep", v}};
  EXPECT_NO_THROW(parse(encode(spec).file));
  spec.metadata = {{"deeper", array(GgufType::ARRAY, {v})}};
  expect_error(encode(spec).file, {"key 'deeper'", "nested deeper than 8"});
}

TEST(GgufErrors, DuplicateKeysAndTensors) {
  GgufSpec spec = one_tensor();
  spec.metadata.push_back(spec.metadata[0]);
  Encoded e = encode(spec);
  expect_error(e.file, {at(e.kv_at[1]), "key 'general.name'",
                        fmt::format("duplicate key (first at byte {})", e.kv_at[0])});

  spec = one_tensor();
  spec.tensors.push_back({"w", {2}, ggml(DType::F32), 128});
  spec.data_bytes = 256;
  e = encode(spec);
  expect_error(e.file, {at(e.tensor_at[1]), "tensor 'w'",
                        fmt::format("duplicate tensor name (first at byte {})", e.tensor_at[0])});
}

TEST(GgufErrors, BadAlignment) {
  for (uint32_t bad : {0u, 48u}) {
    GgufSpec spec = one_tensor();
    spec.metadata.emplace_back("general.alignment", make<GgufType::U32>(bad));
    Encoded e = encode(spec);
    expect_error(e.file, {at(e.kv_at[1]), "key 'general.alignment'",
                          fmt::format("{} is not a nonzero power of two", bad)});
  }
  GgufSpec spec = one_tensor();
  spec.metadata.emplace_back("general.alignment", make<GgufType::U64>(uint64_t{64}));
  expect_error(encode(spec).file, {"key 'general.alignment'", "type is u64, expected u32"});
}

TEST(GgufErrors, BadTensorDescriptions) {
  auto file_with = [](TensorSpec t) {
    GgufSpec spec = one_tensor();
    spec.tensors = {std::move(t)};
    return encode(spec);
  };
  Encoded e = file_with({"w", {1, 1, 1, 1, 1}, ggml(DType::F32), 0});
  expect_error(e.file, {at(e.tensor_at[0]), "tensor 'w'", "5 dimensions, at most 4"});
  e = file_with({"w", {uint64_t{1} << 32, uint64_t{1} << 32}, ggml(DType::U8), 0});
  expect_error(e.file, {at(e.tensor_at[0]), "tensor 'w'", "dimension 1", "overflows"});
  e = file_with({"w", {uint64_t{1} << 63}, ggml(DType::I8), 0});
  expect_error(e.file, {"tensor 'w'", "dimension 0", "overflows"});
  e = file_with({"w", {uint64_t{1} << 62}, ggml(DType::F32), 0});
  expect_error(e.file, {"tensor 'w'", "overflow a 64-bit byte count"});
  e = file_with({"w", {33, 2}, ggml(DType::Q4_0), 0});
  expect_error(e.file, {at(e.tensor_at[0]), "tensor 'w'", "ne[0] = 33", "Q4_0's block of 32"});
  e = file_with({"w", {4}, 99, 0});
  expect_error(e.file, {at(e.tensor_at[0] + 9 + 4 + 8), "tensor 'w'", "unknown ggml type 99"});
  e = file_with({"w", {256}, 16, 0});
  expect_error(e.file, {"tensor 'w'", "unsupported ggml type 16 (IQ2_XXS)"});
  e = file_with({"w", {4}, ggml(DType::F32), 8});
  expect_error(e.file, {at(e.tensor_at[0] + 9 + 4 + 8 + 4), "tensor 'w'",
                        "data offset 8 is not a multiple of the alignment 32"});
}

TEST(GgufErrors, TensorDataOutsideTheFile) {
  GgufSpec spec = one_tensor();
  spec.tensors = {{"w", {17}, ggml(DType::F32), 0}};
  Encoded e = encode(spec);
  expect_error(e.file, {at(e.tensor_at[0]), "tensor 'w'", "68 bytes", "past the end of the file"});
  spec.tensors = {{"w", {1}, ggml(DType::F32), ~uint64_t{31}}};
  e = encode(spec);
  expect_error(e.file, {at(e.tensor_at[0]), "tensor 'w'", "past the end of the file"});
}

TEST(GgufErrors, OverlappingTensors) {
  GgufSpec spec = one_tensor();
  spec.tensors = {{"a", {16}, ggml(DType::F32), 32},
                  {"empty", {0}, ggml(DType::F32), 32},
                  {"b", {12}, ggml(DType::F32), 0}};
  spec.data_bytes = 128;
  Encoded e = encode(spec);
  expect_error(e.file, {at(e.tensor_at[0]), "tensor 'a'", "overlaps tensor 'b'"});
}

// Names must be UTF-8; nlohmann's validator (RFC 3629) is the reference.
TEST(GgufErrors, NonUtf8NamesMatchAReferenceValidator) {
  const unsigned char pool[] = {'a',  0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                                0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF};
  std::mt19937_64 rng(3);
  int valid = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string name;
    for (uint64_t n = 1 + rng() % 5; n > 0; --n)
      name += static_cast<char>(pool[rng() % sizeof pool]);
    bool expected_valid = nlohmann::json::accept("\"" + name + "\"");
    valid += expected_valid;
    for (bool as_key : {true, false}) {
      GgufSpec spec = one_tensor();
      if (as_key)
        spec.metadata[0].first = name;
      else
        spec.tensors[0].name = name;
      std::vector<std::byte> file = encode(spec).file;
      if (expected_valid) {
        EXPECT_NO_THROW(parse(file)) << testing::PrintToString(name);
      } else {
        try {
          parse(file);
          ADD_FAILURE() << "accepted " << testing::PrintToString(name);
        } catch (const Error& e) {
          EXPECT_THAT(e.what(), HasSubstr("not valid UTF-8"));
        }
      }
    }
  }
  EXPECT_GT(valid, 100);  // the pool must exercise both outcomes
}

TEST(GgufErrors, NonUtf8NameIsEscapedInTheMessage) {
  GgufSpec spec = one_tensor();
  spec.tensors[0].name = "bad\xff\n";
  Encoded e = encode(spec);
  expect_error(e.file, {at(e.tensor_at[0]), "tensor #0", "tensor name \"bad\\xff\\x0a\""});

  spec.tensors[0].name = std::string(100000, 'x') + "\xff";
  try {
    parse(encode(spec).file);
    ADD_FAILURE() << "parsed without error";
  } catch (const Error& e) {
    EXPECT_LT(std::string_view(e.what()).size(), 300u);
    EXPECT_THAT(e.what(), HasSubstr("xxx...\" is not valid UTF-8"));
  }
}

}  // namespace
}  // namespace ebb
