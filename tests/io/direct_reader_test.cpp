#include "io/direct_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "io/page_cache.h"
#include "support/random_bytes.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

using test::random_bytes;

namespace fs = std::filesystem;
using Bytes = std::vector<std::byte>;
constexpr uint64_t kMiB = 1 << 20;

// Synced, so its pages are clean and evict_file can drop them.
void write_synced_file(const fs::path& path, const Bytes& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ASSERT_EQ(fsync(fd), 0);
  ::close(fd);
}

bool on_tmpfs(const fs::path& path) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 && st.f_type == TMPFS_MAGIC;
}

// A 4096-aligned allocation, to place destinations at chosen alignments.
struct AlignedBytes {
  explicit AlignedBytes(size_t n)
      : data(static_cast<std::byte*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096))) {}
  ~AlignedBytes() { std::free(data); }
  std::byte* data;
};

struct Way {
  const char* name;
  DirectReadOptions options;
};

void PrintTo(const Way& way, std::ostream* os) {
  *os << way.name;
}

// Small chunks so a test-sized file still takes many pieces and a full queue.
constexpr uint32_t kChunk = 64 * 1024;
const Way kWays[] = {
    {"io_uring", {true, true, kChunk, 4}},
    {"pread_direct", {true, false, kChunk, 4}},
    {"buffered", {false, false, kChunk, 4}},
    {"io_uring_depth1", {true, true, 4096, 1}},
};

class DirectReaderTest : public ::testing::TestWithParam<Way> {
 protected:
  DirectReader open(const fs::path& path) {
    DirectReader reader = DirectReader::open(path.string(), GetParam().options);
    const std::string method = reader.method();
    if (!GetParam().options.use_o_direct) {
      EXPECT_EQ(method, "pread+fadvise");
    }
    if (!GetParam().options.use_io_uring) {
      EXPECT_NE(method, "io_uring+O_DIRECT");
    }
    EXPECT_EQ(reader.direct(), method != "pread+fadvise") << method;
    return reader;
  }

  // Reads [offset, offset + len) into memory at `misalign` bytes past a 4096 boundary.
  void expect_read(DirectReader& reader, const Bytes& content, uint64_t offset, uint64_t len,
                   uint64_t misalign) {
    AlignedBytes buffer(len + misalign + 1);
    std::byte* dst = buffer.data + misalign;
    std::memset(dst, 0x5A, len + 1);
    reader.read(offset, {dst, len});
    ASSERT_EQ(std::memcmp(dst, content.data() + offset, len), 0)
        << "offset " << offset << " length " << len << " misalign " << misalign << " via "
        << reader.method();
    ASSERT_EQ(dst[len], std::byte{0x5A})
        << "wrote past the end; offset " << offset << " length " << len;
  }

  test::TempDir dir_;
};

TEST_P(DirectReaderTest, ReadsMatchTheFile) {
  const fs::path path = dir_ / "model.bin";
  const Bytes content = random_bytes(kMiB + 1234, 11);
  write_synced_file(path, content);
  DirectReader reader = open(path);
  EXPECT_EQ(reader.size(), content.size());
  EXPECT_EQ(reader.path(), path.string());
  const uint64_t size = content.size();
  const std::pair<uint64_t, uint64_t> fixed[] = {{0, 0},
                                                 {size, 0},
                                                 {0, 1},
                                                 {size - 1, 1},
                                                 {0, 4095},
                                                 {0, 4097},
                                                 {1, 4095},
                                                 {4095, 2},
                                                 {4096, 4096},
                                                 {4095, 4097},
                                                 {0, size},
                                                 {1, size - 1},
                                                 {100, 300000},
                                                 {8192, 5 * kChunk},
                                                 {size - 5000, 5000},
                                                 {size - 4097, 4097}};
  for (const auto& [offset, len] : fixed) {
    for (uint64_t misalign : {uint64_t{0}, offset % 4096, uint64_t{17}}) {
      expect_read(reader, content, offset, len, misalign);
    }
  }
  std::mt19937_64 rng(12);
  for (int i = 0; i < 200; ++i) {
    const uint64_t offset = rng() % (size + 1);
    const uint64_t max_len = size - offset;
    const uint64_t len =
        max_len == 0 ? 0 : rng() % std::min<uint64_t>(max_len + 1, 1 + (rng() % 2 ? 9000 : 400000));
    const uint64_t misalign = rng() % 3 == 0 ? offset % 4096 : rng() % 4096;
    expect_read(reader, content, offset, len, misalign);
  }
}

TEST_P(DirectReaderTest, ReadingPastTheEndIsAnError) {
  const fs::path path = dir_ / "model.bin";
  const Bytes content = random_bytes(10000, 13);
  write_synced_file(path, content);
  DirectReader reader = open(path);
  Bytes dst(20);
  try {
    reader.read(9990, dst);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part :
         {path.string(), std::string("9990"), std::string("20 bytes"), std::string("10000")}) {
      EXPECT_NE(message.find(part), std::string::npos) << message;
    }
  }
  EXPECT_THROW(reader.read(std::numeric_limits<uint64_t>::max() - 5, dst), Error);
  EXPECT_THROW(reader.read(10001, {}), Error);
}

TEST_P(DirectReaderTest, FileThatShrankIsAnError) {
  const fs::path path = dir_ / "model.bin";
  const Bytes content = random_bytes(300000, 14);
  write_synced_file(path, content);
  DirectReader reader = open(path);
  fs::resize_file(path, 100000);
  Bytes dst(50000);
  try {
    reader.read(200000, dst);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("300000"), std::string::npos) << message;
  }
  // The reader stays usable for what is still there.
  expect_read(reader, content, 1000, 5000, 0);
}

TEST_P(DirectReaderTest, ZeroLengthFile) {
  const fs::path path = dir_ / "empty.bin";
  write_synced_file(path, {});
  DirectReader reader = open(path);
  EXPECT_EQ(reader.size(), 0u);
  EXPECT_NO_THROW(reader.read(0, {}));
  Bytes dst(1);
  EXPECT_THROW(reader.read(0, dst), Error);
}

// The point of the reader: a cold file stays cold after it was read.
TEST_P(DirectReaderTest, LeavesThePageCacheCold) {
  if (on_tmpfs(dir_.path()))
    GTEST_SKIP() << dir_.path() << " is on tmpfs, whose pages cannot be evicted";
  const fs::path path = dir_ / "model.bin";
  const Bytes content = random_bytes(16 * kMiB + 99, 15);
  write_synced_file(path, content);
  evict_file(path.string());
  const uint64_t before = file_resident_bytes(path.string());
  DirectReader reader = open(path);
  expect_read(reader, content, 0, content.size(), 0);
  expect_read(reader, content, 12345, 3 * kMiB, 7);
  EXPECT_LT(file_resident_bytes(path.string()), before + kMiB) << "via " << reader.method();
}

INSTANTIATE_TEST_SUITE_P(Ways, DirectReaderTest, ::testing::ValuesIn(kWays),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DirectReader, MissingFileAndDirectoryAreErrors) {
  const fs::path missing = fs::path(EBB_BINARY_DIR) / "no-such-model.safetensors";
  try {
    DirectReader::open(missing.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::strerror(ENOENT)), std::string::npos) << e.what();
  }
  try {
    DirectReader::open(EBB_BINARY_DIR);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
  }
}

TEST(DirectReader, BadOptionsAreErrors) {
  const std::string path = std::string(EBB_BINARY_DIR) + "/CMakeCache.txt";
  EXPECT_THROW(DirectReader::open(path, {true, true, 1000, 4}), Error);
  EXPECT_THROW(DirectReader::open(path, {true, true, 0, 4}), Error);
  EXPECT_THROW(DirectReader::open(path, {true, true, 4096, 0}), Error);
  EXPECT_NO_THROW(DirectReader::open(path, {true, true, 4096, 1}));
}

}  // namespace
}  // namespace ebb
