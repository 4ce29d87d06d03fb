#include "io/safetensors.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/mman.h>
#include "support/expect_error.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;

const std::string kFile = "test.safetensors";

std::vector<std::byte> make_file(std::string_view header, size_t data_bytes = 0) {
  std::vector<std::byte> file(8 + header.size() + data_bytes, std::byte{0xAB});
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) file[i] = std::byte(n >> (8 * i));
  std::memcpy(file.data() + 8, header.data(), header.size());
  return file;
}

SafetensorsHeader parse(const std::vector<std::byte>& file) {
  return parse_safetensors(file, kFile);
}

void expect_error(const std::vector<std::byte>& file,
                  std::initializer_list<std::string> fragments) {
  std::vector<std::string> all{kFile};
  all.insert(all.end(), fragments.begin(), fragments.end());
  test::expect_error_with([&] { parse(file); }, all);
}

std::vector<DType> safetensors_dtypes() {
  std::vector<DType> out;
  for (int i = 0; i < kDTypeCount; ++i)
    if (dtype_in_safetensors(DType(i))) out.push_back(DType(i));
  return out;
}

TEST(Safetensors, ReadsEveryDtype) {
  std::vector<DType> dtypes = safetensors_dtypes();
  ASSERT_EQ(dtypes.size(), 15u);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  for (DType t : dtypes) {
    uint64_t bytes = 6 * dtype_info(t).block_bytes;
    header[fmt::format("t.{}", dtype_name(t))] = {
        {"dtype", dtype_name(t)}, {"shape", {2, 3}}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  SafetensorsHeader h = parse(make_file(text, offset));
  EXPECT_EQ(h.data_offset, 8 + text.size());
  ASSERT_EQ(h.tensors.size(), dtypes.size());
  uint64_t expected_offset = h.data_offset;
  for (size_t i = 0; i < dtypes.size(); ++i) {
    const TensorInfo& t = h.tensors[i];
    EXPECT_EQ(t.name, fmt::format("t.{}", dtype_name(dtypes[i])));
    EXPECT_EQ(t.dtype, dtypes[i]);
    EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(t.offset, expected_offset);
    EXPECT_EQ(t.nbytes, 6 * dtype_info(dtypes[i]).block_bytes);
    expected_offset += t.nbytes;
  }
  EXPECT_TRUE(h.metadata.empty());
}

TEST(Safetensors, SortsByOffsetKeepingHeaderOrderForTies) {
  std::string header = R"({"z":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                       R"("y":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("a":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]}})";
  SafetensorsHeader h = parse(make_file(header, 8));
  std::vector<std::string> names;
  for (const TensorInfo& t : h.tensors) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"y", "b", "a", "z"}));
}

TEST(Safetensors, ReadsMetadataScalarsAndPadding) {
  std::string header = R"({"__metadata__":{"format":"pt","b":"2"},"s":{"dtype":"F16","shape":[],)"
                       R"("data_offsets":[0,2]}}      )";
  SafetensorsHeader h = parse(make_file(header, 2));
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_TRUE(h.tensors[0].shape.empty());
  EXPECT_EQ(h.tensors[0].nbytes, 2u);
  using Pair = std::pair<std::string, std::string>;
  EXPECT_EQ(h.metadata, (std::vector<Pair>{{"b", "2"}, {"format", "pt"}}));
}

TEST(Safetensors, EmptyHeaderHasNoTensors) {
  SafetensorsHeader h = parse(make_file("{}"));
  EXPECT_TRUE(h.tensors.empty());
  EXPECT_EQ(h.data_offset, 10u);
}

// Random valid files: shuffled entries, gaps between tensors, random shapes and dtypes; the
// parse must give back exactly what was written.
TEST(Safetensors, RandomValidFilesRoundTrip) {
  std::mt19937_64 rng(7);
  std::vector<DType> dtypes = safetensors_dtypes();
  for (int round = 0; round < 200; ++round) {
    int count = static_cast<int>(rng() % 12);
    std::vector<TensorInfo> expected;
    uint64_t offset = 0;
    for (int i = 0; i < count; ++i) {
      TensorInfo t;
      t.name = fmt::format("n{}.{}", rng() % 1000, i);
      t.dtype = dtypes[rng() % dtypes.size()];
      int rank = static_cast<int>(rng() % 5);
      for (int d = 0; d < rank; ++d) t.shape.push_back(static_cast<int64_t>(rng() % 4));
      t.nbytes = t.elements() * dtype_info(t.dtype).block_bytes;
      offset += rng() % 3;  // gaps are legal
      t.offset = offset;
      offset += t.nbytes;
      expected.push_back(t);
    }
    std::vector<TensorInfo> shuffled = expected;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    for (const TensorInfo& t : shuffled)
      header[t.name] = {{"dtype", dtype_name(t.dtype)},
                        {"shape", t.shape},
                        {"data_offsets", {t.offset, t.offset + t.nbytes}}};
    std::string text = header.dump() + std::string(rng() % 8, ' ');
    SafetensorsHeader h = parse(make_file(text, offset + rng() % 3));
    // Zero-size tensors sharing an offset come back in header order.
    std::stable_sort(shuffled.begin(), shuffled.end(),
                     [](const TensorInfo& a, const TensorInfo& b) { return a.offset < b.offset; });
    ASSERT_EQ(h.tensors.size(), shuffled.size());
    for (size_t i = 0; i < shuffled.size(); ++i) {
      EXPECT_EQ(h.tensors[i].name, shuffled[i].name);
      EXPECT_EQ(h.tensors[i].dtype, shuffled[i].dtype);
      EXPECT_EQ(h.tensors[i].shape, shuffled[i].shape);
      EXPECT_EQ(h.tensors[i].offset, h.data_offset + shuffled[i].offset);
      EXPECT_EQ(h.tensors[i].nbytes, shuffled[i].nbytes);
    }
  }
}

TEST(Safetensors, MatchesThePythonPackage) {
  std::string path = EBB_TEST_DATA_DIR "/io/reference.safetensors";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path;
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> file(chars.size());
  std::memcpy(file.data(), chars.data(), chars.size());
  std::ifstream json_in(path + ".json");
  nlohmann::json expected = nlohmann::json::parse(json_in);

  SafetensorsHeader h = parse_safetensors(file, path);
  EXPECT_EQ(h.data_offset, expected["data_offset"].get<uint64_t>());
  std::vector<std::pair<std::string, std::string>> metadata;
  for (const auto& [k, v] : expected["metadata"].items()) metadata.emplace_back(k, v);
  std::sort(metadata.begin(), metadata.end());
  EXPECT_EQ(h.metadata, metadata);
  ASSERT_EQ(h.tensors.size(), expected["tensors"].size());
  for (const nlohmann::json& e : expected["tensors"]) {
    auto it = std::find_if(h.tensors.begin(), h.tensors.end(),
                           [&](const TensorInfo& t) { return t.name == e["name"]; });
    ASSERT_NE(it, h.tensors.end()) << e["name"];
    EXPECT_EQ(dtype_name(it->dtype), e["dtype"].get<std::string>());
    EXPECT_EQ(it->shape, e["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(it->offset, e["offset"].get<uint64_t>()) << it->name;
    EXPECT_EQ(it->nbytes, e["nbytes"].get<uint64_t>()) << it->name;
  }
  EXPECT_TRUE(
      std::is_sorted(h.tensors.begin(), h.tensors.end(),
                     [](const TensorInfo& a, const TensorInfo& b) { return a.offset < b.offset; }));
}

TEST(SafetensorsErrors, FileTooShort) {
  expect_error(std::vector<std::byte>(5), {"byte 0", "5 bytes"});
}

TEST(SafetensorsErrors, HeaderLengthPastEnd) {
  std::vector<std::byte> file = make_file("{}");
  file[0] = std::byte{100};
  expect_error(file, {"byte 0", "header length 100", "2 bytes"});
  file[7] = std::byte{0x80};
  expect_error(file, {"header length 9223372036854775908"});
}

TEST(SafetensorsErrors, HeaderLengthOverTheCap) {
  // A sparse anonymous mapping: only the page holding the length is ever touched.
  const size_t size = 101'000'000;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* bytes = static_cast<std::byte*>(p);
  uint64_t n = 100'000'001;
  for (int i = 0; i < 8; ++i) bytes[i] = std::byte(n >> (8 * i));
  try {
    parse_safetensors({bytes, size}, kFile);
    ADD_FAILURE() << "parsed without error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("100000001"));
    EXPECT_THAT(e.what(), HasSubstr("100000000 byte limit"));
  }
  munmap(p, size);
}

TEST(SafetensorsErrors, NotJson) {
  expect_error(make_file(R"({"a": x})"), {"byte 14", "not valid JSON"});
  expect_error(make_file(R"({"a": 1)"), {"not valid JSON"});
  expect_error(make_file(""), {"not valid JSON"});
  expect_error(make_file(R"({"a": 1e999})"), {"not valid JSON", "overflow"});
  expect_error(make_file(std::string("{}\0\0", 4)), {"byte 10", "NUL byte"});
}

TEST(SafetensorsErrors, NotAnObject) {
  expect_error(make_file("[1, 2]"), {"byte 8", "array", "expected an object"});
}

TEST(SafetensorsErrors, InvalidUtf8) {
  expect_error(make_file("{\"a\xff\":{}}"), {"byte 11", "invalid UTF-8"});
  expect_error(make_file("{\"\xc0\x80\":{}}"), {"invalid UTF-8"});
}

TEST(SafetensorsErrors, DuplicateTensorNames) {
  std::string entry = R"({"dtype":"F32","shape":[],"data_offsets":[0,4]})";
  std::string header = R"({"w":)" + entry + R"(, "w":)" + entry + "}";
  size_t second = 8 + header.find("\"w\"", 2);
  expect_error(make_file(header, 4),
               {fmt::format("byte {}", second), "duplicate tensor name 'w'", "first at byte 9"});
}

TEST(SafetensorsErrors, DuplicateKeysInsideEntry) {
  expect_error(
      make_file(R"({"w":{"dtype":"F32","dtype":"F16","shape":[],"data_offsets":[0,4]}})", 4),
      {"byte 28", "duplicate key 'dtype'"});
  expect_error(make_file(R"({"__metadata__":{"k":"a","k":"b"}})"), {"duplicate key 'k'"});
}

TEST(SafetensorsErrors, EscapedQuotesDoNotConfuseOffsets) {
  std::string header = R"({"a\\":{}, "b\"c\\\"":{}, "b\"c\\\"":{}})";
  size_t second = 8 + header.rfind(R"("b\")");
  expect_error(make_file(header), {fmt::format("byte {}", second), "duplicate tensor name"});
}

TEST(SafetensorsErrors, UnknownDtype) {
  expect_error(make_file(R"({"w":{"dtype":"Q4_0","shape":[32],"data_offsets":[0,18]}})", 18),
               {"byte 9", "tensor 'w'", "unknown dtype 'Q4_0'", "F64, F32, F16, BF16", "BOOL"});
  expect_error(make_file(R"({"w":{"dtype":7,"shape":[],"data_offsets":[0,4]}})", 4),
               {"tensor 'w'", "dtype is a JSON number"});
}

TEST(SafetensorsErrors, MissingFieldsAndWrongEntry) {
  expect_error(make_file(R"({"w":{"shape":[],"data_offsets":[0,4]}})", 4),
               {"tensor 'w'", "missing \"dtype\""});
  expect_error(make_file(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4),
               {"tensor 'w'", "missing \"shape\""});
  expect_error(make_file(R"({"w":{"dtype":"F32","shape":[]}})", 4),
               {"tensor 'w'", "missing \"data_offsets\""});
  expect_error(make_file(R"({"x":1, "w":[1]})"), {"byte 9", "tensor 'x'", "expected an object"});
}

TEST(SafetensorsErrors, BadShapes) {
  auto file = [](std::string shape) {
    return make_file(R"({"w":{"dtype":"U8","shape":)" + shape + R"(,"data_offsets":[0,1]}})", 1);
  };
  expect_error(file("3"), {"tensor 'w'", "shape is a JSON number"});
  expect_error(file("[-1]"), {"byte 9", "tensor 'w'", "shape", "-1"});
  expect_error(file("[1.5]"), {"tensor 'w'", "1.5"});
  expect_error(file(R"(["1"])"), {"tensor 'w'", "shape"});
  expect_error(file("[9223372036854775808]"), {"tensor 'w'", "9223372036854775807"});
  expect_error(file("[4294967296,4294967296]"), {"tensor 'w'", "more than 2^64 elements"});
  expect_error(make_file(R"({"w":{"dtype":"F32","shape":[4611686018427387904],)"
                         R"("data_offsets":[0,1]}})",
                         1),
               {"tensor 'w'", "overflow"});
}

TEST(SafetensorsErrors, BadDataOffsets) {
  auto file = [](std::string offsets, size_t data = 8) {
    return make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":)" + offsets + "}}", data);
  };
  expect_error(file("[0]"), {"tensor 'w'", "data_offsets must be [begin, end]"});
  expect_error(file("[0,8,16]"), {"tensor 'w'", "data_offsets must be [begin, end]"});
  expect_error(file(R"(["0",8])"), {"tensor 'w'", "data_offsets"});
  expect_error(file("[-8,0]"), {"tensor 'w'", "data_offsets"});
  expect_error(file("[8,0]"), {"byte 9", "tensor 'w'", "begin after end"});
  expect_error(file("[0,12]", 12), {"tensor 'w'", "hold 12 bytes", "2 elements of F32 need 8"});
  expect_error(file("[4,12]"), {"tensor 'w'", "end past the 8-byte data region"});
  expect_error(file("[18446744073709551607,18446744073709551615]"), {"tensor 'w'", "end past the"});
}

TEST(SafetensorsErrors, OverlappingTensors) {
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  size_t b_at = 8 + header.find("\"b\"");
  expect_error(make_file(header, 12),
               {fmt::format("byte {}", b_at), "tensor 'b'", "overlap tensor 'a'"});
}

TEST(SafetensorsErrors, BadMetadata) {
  expect_error(make_file(R"({"__metadata__":{"k":1}})"),
               {"byte 9", "__metadata__", "'k'", "expected a string"});
  expect_error(make_file(R"({"__metadata__":["k"]})"), {"__metadata__", "expected an object"});
}

TEST(SafetensorsErrors, LongNamesAreCutInMessages) {
  std::string name(100000, 'n');
  try {
    parse(make_file(R"({")" + name + R"(":{"dtype":"X","shape":[],"data_offsets":[0,0]}})"));
    ADD_FAILURE() << "parsed without error";
  } catch (const Error& e) {
    EXPECT_LT(std::string_view(e.what()).size(), 400u);
    EXPECT_THAT(e.what(), HasSubstr("nnn...': unknown dtype 'X'"));
  }
}

TEST(SafetensorsErrors, DeepNesting) {
  expect_error(make_file(R"({"a":[[[[[[[[[[1]]]]]]]]]]})"), {"nested deeper than 8"});
}

}  // namespace
}  // namespace ebb
