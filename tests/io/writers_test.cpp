#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "io/gguf_writer.h"
#include "io/safetensors_writer.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A byte that depends on the tensor and the position, so misplaced chunks show.
std::byte pattern(uint64_t tensor, uint64_t offset) {
  return static_cast<std::byte>((offset * 131 + (offset >> 9) + tensor * 17) & 0xFF);
}

TensorToWrite patterned(std::string name, DType dtype, std::vector<int64_t> shape,
                        uint64_t tensor) {
  return {std::move(name), dtype, std::move(shape),
          [tensor](std::span<std::byte> dst, uint64_t offset) {
            for (size_t i = 0; i < dst.size(); ++i) dst[i] = pattern(tensor, offset + i);
          }};
}

class WritersTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_ / name; }
  static std::string read(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  bool dir_is_empty() const { return fs::is_empty(dir_.path()); }

  test::TempDir dir_;
};

struct SafetensorsFile {
  uint64_t header_size;
  nlohmann::json header;
  std::string data;
};

SafetensorsFile split_safetensors(const std::string& bytes) {
  SafetensorsFile file;
  std::memcpy(&file.header_size, bytes.data(), 8);
  const std::string text = bytes.substr(8, file.header_size);
  file.header = nlohmann::json::parse(text);
  file.data = bytes.substr(8 + file.header_size);
  return file;
}

TEST_F(WritersTest, SafetensorsHeaderIsPaddedJsonInTensorOrder) {
  std::vector<TensorToWrite> tensors = {
      patterned("b.weight", DType::F16, {3, 5}, 0),
      patterned("a.position_ids", DType::I64, {1, 7}, 1),
      patterned("scalar", DType::F32, {}, 2),
      patterned("empty", DType::BF16, {0, 4}, 3),
  };
  write_safetensors(path("m.safetensors"), tensors, {{"format", "pt"}}, false);

  const std::string bytes = read(path("m.safetensors"));
  SafetensorsFile file = split_safetensors(bytes);
  EXPECT_EQ(file.header_size % 8, 0u);
  const std::string text = bytes.substr(8, file.header_size);
  EXPECT_EQ(text.find_last_not_of(' '), text.find_last_of('}'));
  EXPECT_EQ(file.header["__metadata__"], nlohmann::json({{"format", "pt"}}));

  const std::vector<std::string> order = {"__metadata__", "b.weight", "a.position_ids", "scalar",
                                          "empty"};
  size_t previous = 0;
  for (const std::string& name : order) {
    const size_t at = text.find('"' + name + '"');
    ASSERT_NE(at, std::string::npos) << name;
    EXPECT_GE(at, previous) << name << " is out of order";
    previous = at;
  }

  const std::vector<uint64_t> sizes = {30, 56, 4, 0};
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& entry = file.header[tensors[i].name];
    EXPECT_EQ(entry["dtype"], std::string(dtype_name(tensors[i].dtype)));
    EXPECT_EQ(entry["shape"].get<std::vector<int64_t>>(), tensors[i].shape);
    EXPECT_EQ(entry["data_offsets"], nlohmann::json({offset, offset + sizes[i]}));
    for (uint64_t b = 0; b < sizes[i]; ++b)
      ASSERT_EQ(static_cast<std::byte>(file.data[offset + b]), pattern(i, b)) << tensors[i].name;
    offset += sizes[i];
  }
  EXPECT_EQ(file.data.size(), offset);
}

TEST_F(WritersTest, LargeTensorsAreFilledInBoundedWholeElementChunks) {
  // 2.5 chunks of F32 and a Q8_0 tensor just over one chunk, whose 34-byte blocks do not divide
  // the chunk size.
  const int64_t f32_elems = static_cast<int64_t>(kFillChunkBytes * 5 / 2 / 4);
  const int64_t q8_blocks = static_cast<int64_t>(kFillChunkBytes / 34 + 10);
  std::mutex mutex;
  std::vector<std::pair<uint64_t, uint64_t>> calls[2];
  auto recording = [&](TensorToWrite t, int index) {
    auto inner = t.fill;
    t.fill = [&, inner, index](std::span<std::byte> dst, uint64_t offset) {
      {
        std::lock_guard lock(mutex);
        calls[index].emplace_back(offset, dst.size());
      }
      inner(dst, offset);
    };
    return t;
  };
  std::vector<TensorToWrite> tensors = {
      recording(patterned("big", DType::F32, {f32_elems}, 0), 0),
      recording(patterned("q", DType::Q8_0, {1, q8_blocks * 32}, 1), 1),
  };
  write_gguf(path("big.gguf"), tensors, {}, 32, false);

  const uint64_t unit[2] = {4, 34};
  const uint64_t total[2] = {static_cast<uint64_t>(f32_elems) * 4,
                             static_cast<uint64_t>(q8_blocks) * 34};
  for (int t = 0; t < 2; ++t) {
    std::sort(calls[t].begin(), calls[t].end());
    EXPECT_GE(calls[t].size(), 2u);
    uint64_t covered = 0;
    for (const auto& [offset, size] : calls[t]) {
      EXPECT_EQ(offset, covered);
      EXPECT_LE(size, kFillChunkBytes);
      EXPECT_EQ(offset % unit[t], 0u);
      EXPECT_EQ(size % unit[t], 0u);
      covered += size;
    }
    EXPECT_EQ(covered, total[t]);
  }

  const std::string bytes = read(path("big.gguf"));
  const uint64_t data_start = bytes.size() - (total[0] + (total[1] + 31) / 32 * 32);
  EXPECT_EQ(data_start % 32, 0u);
  for (uint64_t i = 0; i < total[0]; i += 4099)
    ASSERT_EQ(static_cast<std::byte>(bytes[data_start + i]), pattern(0, i)) << i;
  for (uint64_t i = 0; i < total[1]; i += 4099)
    ASSERT_EQ(static_cast<std::byte>(bytes[data_start + total[0] + i]), pattern(1, i)) << i;
}

TEST_F(WritersTest, SafetensorsRejectsWhatItCannotStore) {
  auto expect_error = [&](std::vector<TensorToWrite> tensors, const std::string& text) {
    try {
      write_safetensors(path("bad.safetensors"), tensors, {}, false);
      ADD_FAILURE() << "expected an error mentioning " << text;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(text));
    }
    EXPECT_TRUE(dir_is_empty());
  };
  expect_error({patterned("q", DType::Q4_0, {32}, 0)}, "q has type Q4_0");
  expect_error({patterned("x", DType::F32, {2}, 0), patterned("x", DType::F32, {2}, 1)},
               "duplicate tensor x");
  expect_error({patterned("neg", DType::F32, {2, -3}, 0)}, "neg: negative dimension -3");
  expect_error({{"nofill", DType::F32, {2}, nullptr}}, "nofill has no fill function");
}

TEST_F(WritersTest, FailingFillLeavesNoFile) {
  std::vector<TensorToWrite> tensors = {
      patterned("ok", DType::F32, {1 << 20}, 0),
      {"broken", DType::F32, {1 << 20}, [](std::span<std::byte>, uint64_t) {
         throw std::runtime_error("generator broke");
       }}};
  EXPECT_THROW(write_safetensors(path("x.safetensors"), tensors, {}, false), std::runtime_error);
  EXPECT_THROW(write_gguf(path("x.gguf"), tensors, {}, 32, false), std::runtime_error);
  EXPECT_TRUE(dir_is_empty());
}

TEST_F(WritersTest, RefusesToOverwriteUnlessAsked) {
  std::vector<TensorToWrite> tensors = {patterned("t", DType::F32, {4}, 0)};
  write_safetensors(path("m.safetensors"), tensors, {}, false);
  EXPECT_THROW(write_safetensors(path("m.safetensors"), tensors, {}, false), Error);
  tensors[0].shape = {8};
  write_safetensors(path("m.safetensors"), tensors, {}, true);
  EXPECT_EQ(split_safetensors(read(path("m.safetensors"))).data.size(), 32u);
}

// Builds expected GGUF bytes by hand, following gguf.md.
class Bytes {
 public:
  template <typename T>
  Bytes& put(T value) {
    const char* p = reinterpret_cast<const char*>(&value);
    text_.append(p, sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    text_ += s;
    return *this;
  }
  Bytes& pad_to(size_t alignment) {
    text_.append((alignment - text_.size() % alignment) % alignment, '\0');
    return *this;
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

TEST_F(WritersTest, GgufMatchesHandEncodedBytes) {
  GgufArray names{GgufType::STRING, {GgufValue{std::string("x")}, GgufValue{std::string("yz")}}};
  GgufArray nested{GgufType::ARRAY, {GgufValue{names}, GgufValue{GgufArray{GgufType::I16, {}}}}};
  GgufMetadata metadata = {
      {"u8", GgufValue{uint8_t{7}}},
      {"i8", GgufValue{int8_t{-2}}},
      {"u16", GgufValue{uint16_t{513}}},
      {"i16", GgufValue{int16_t{-300}}},
      {"u32", GgufValue{uint32_t{70000}}},
      {"i32", GgufValue{int32_t{-70000}}},
      {"f32", GgufValue{1.5f}},
      {"bool", GgufValue{true}},
      {"str", GgufValue{std::string("sd")}},
      {"nested", GgufValue{nested}},
      {"u64", GgufValue{uint64_t{1} << 40}},
      {"i64", GgufValue{int64_t{-5}}},
      {"f64", GgufValue{0.25}},
  };
  std::vector<TensorToWrite> tensors = {
      patterned("w", DType::F16, {2, 3}, 0),
      patterned("q", DType::Q4_0, {1, 64}, 1),
  };
  write_gguf(path("m.gguf"), tensors, metadata, 64, false);

  Bytes expected;
  expected.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(2).put<uint64_t>(14);
  expected.str("u8").put<uint32_t>(0).put<uint8_t>(7);
  expected.str("i8").put<uint32_t>(1).put<int8_t>(-2);
  expected.str("u16").put<uint32_t>(2).put<uint16_t>(513);
  expected.str("i16").put<uint32_t>(3).put<int16_t>(-300);
  expected.str("u32").put<uint32_t>(4).put<uint32_t>(70000);
  expected.str("i32").put<uint32_t>(5).put<int32_t>(-70000);
  expected.str("f32").put<uint32_t>(6).put<float>(1.5f);
  expected.str("bool").put<uint32_t>(7).put<uint8_t>(1);
  expected.str("str").put<uint32_t>(8).str("sd");
  expected.str("nested").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(2);
  expected.put<uint32_t>(8).put<uint64_t>(2).str("x").str("yz");
  expected.put<uint32_t>(3).put<uint64_t>(0);
  expected.str("u64").put<uint32_t>(10).put<uint64_t>(uint64_t{1} << 40);
  expected.str("i64").put<uint32_t>(11).put<int64_t>(-5);
  expected.str("f64").put<uint32_t>(12).put<double>(0.25);
  expected.str("general.alignment").put<uint32_t>(4).put<uint32_t>(64);
  expected.str("w").put<uint32_t>(2).put<uint64_t>(3).put<uint64_t>(2).put<uint32_t>(1);
  expected.put<uint64_t>(0);
  expected.str("q").put<uint32_t>(2).put<uint64_t>(64).put<uint64_t>(1).put<uint32_t>(2);
  expected.put<uint64_t>(64);
  expected.pad_to(64);
  const std::string header = expected.text();

  const std::string bytes = read(path("m.gguf"));
  ASSERT_EQ(bytes.size(), header.size() + 128);
  EXPECT_EQ(bytes.substr(0, header.size()), header);
  for (uint64_t i = 0; i < 12; ++i)
    EXPECT_EQ(static_cast<std::byte>(bytes[header.size() + i]), pattern(0, i));
  EXPECT_EQ(bytes.substr(header.size() + 12, 52), std::string(52, '\0'));
  for (uint64_t i = 0; i < 36; ++i)
    EXPECT_EQ(static_cast<std::byte>(bytes[header.size() + 64 + i]), pattern(1, i));
  EXPECT_EQ(bytes.substr(header.size() + 100), std::string(28, '\0'));
}

TEST_F(WritersTest, GgufDefaultAlignmentAddsNoKey) {
  write_gguf(path("m.gguf"), {patterned("t", DType::F32, {3}, 0)}, {}, 32, false);
  Bytes expected;
  expected.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(0);
  expected.str("t").put<uint32_t>(1).put<uint64_t>(3).put<uint32_t>(0).put<uint64_t>(0);
  expected.pad_to(32);
  const std::string bytes = read(path("m.gguf"));
  EXPECT_EQ(bytes.substr(0, expected.text().size()), expected.text());
  EXPECT_EQ(bytes.size(), expected.text().size() + 32);
}

TEST_F(WritersTest, GgufRejectsInvalidInput) {
  auto expect_error = [&](const std::vector<TensorToWrite>& tensors, const GgufMetadata& metadata,
                          uint32_t alignment, const std::string& text) {
    try {
      write_gguf(path("bad.gguf"), tensors, metadata, alignment, false);
      ADD_FAILURE() << "expected an error mentioning " << text;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(text));
    }
    EXPECT_TRUE(dir_is_empty());
  };
  const std::vector<TensorToWrite> one = {patterned("t", DType::F32, {4}, 0)};
  expect_error({patterned("blk", DType::Q8_0, {64, 48}, 0)}, {}, 32,
               "blk is Q8_0, which needs an innermost dimension that is a multiple of 32");
  expect_error({patterned("s", DType::Q4_K, {}, 0)}, {}, 32, "s is Q4_K");
  expect_error({patterned("d5", DType::F32, {1, 1, 1, 1, 2}, 0)}, {}, 32, "d5 has 5 dimensions");
  expect_error({patterned("u", DType::U16, {2}, 0)}, {}, 32, "u has type U16");
  expect_error(one, {}, 48, "alignment 48");
  expect_error(one, {{"general.alignment", GgufValue{uint32_t{64}}}}, 32, "general.alignment");
  expect_error(one, {{"k", GgufValue{1.0f}}, {"k", GgufValue{2.0f}}}, 32, "duplicate metadata");
  expect_error(one, {{"mixed", GgufValue{GgufArray{GgufType::U8, {GgufValue{1.0f}}}}}}, 32,
               "metadata mixed: an array of type 0 holds an item of type 6");
}

TEST_F(WritersTest, GgufAcceptsAMatchingAlignmentKey) {
  write_gguf(path("m.gguf"), {patterned("t", DType::F32, {3}, 0)},
             {{"general.alignment", GgufValue{uint32_t{128}}}}, 128, false);
  const std::string bytes = read(path("m.gguf"));
  uint64_t kv_count;
  std::memcpy(&kv_count, bytes.data() + 16, 8);
  EXPECT_EQ(kv_count, 1u);
  EXPECT_EQ(bytes.size() % 128, 0u);
}

}  // namespace
}  // namespace ebb
