#include "io/page_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <vector>

#include "core/error.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1 << 20;

// Writes `size` bytes of a pattern and syncs them, so the pages are clean and evictable.
void write_synced_file(const fs::path& path, uint64_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  std::vector<char> block(kMiB);
  for (uint64_t at = 0; at < size; at += block.size()) {
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = static_cast<char>((at + i) >> 12);
    const size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), size - at));
    ASSERT_EQ(::write(fd, block.data(), n), static_cast<ssize_t>(n));
  }
  ASSERT_EQ(fsync(fd), 0);
  ::close(fd);
}

// Faults the pages in; volatile so the compiler keeps reads whose values nobody uses.
void touch_pages(const MappedFile& file, uint64_t begin, uint64_t end) {
  const volatile std::byte* bytes = file.bytes().data();
  for (uint64_t at = begin; at < end; at += 4096) (void)bytes[at];
  if (end > begin) (void)bytes[end - 1];
}

bool on_tmpfs(const fs::path& path) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 && st.f_type == TMPFS_MAGIC;
}

class PageCacheTest : public ::testing::Test {
 protected:
  test::TempDir dir_;
};

TEST(ParseMmapFlags, EmptyMeansNone) {
  for (const char* text : {"", "  ", ",", " , ,"}) {
    const MmapFlags flags = parse_mmap_flags(text);
    EXPECT_FALSE(flags.sequential || flags.populate || flags.willneed || flags.dontneed) << text;
  }
}

TEST(ParseMmapFlags, ReadsEachWord) {
  EXPECT_TRUE(parse_mmap_flags("sequential").sequential);
  EXPECT_TRUE(parse_mmap_flags("populate").populate);
  EXPECT_TRUE(parse_mmap_flags("willneed").willneed);
  EXPECT_TRUE(parse_mmap_flags("dontneed").dontneed);
  const MmapFlags all = parse_mmap_flags(" sequential ,populate,\twillneed , dontneed,");
  EXPECT_TRUE(all.sequential && all.populate && all.willneed && all.dontneed);
  const MmapFlags two = parse_mmap_flags("willneed,sequential");
  EXPECT_TRUE(two.sequential && two.willneed);
  EXPECT_FALSE(two.populate || two.dontneed);
}

TEST(ParseMmapFlags, UnknownWordIsAnError) {
  for (const char* bad : {"sequentail", "populate,Willneed", "dontneed,,random", "seq uential"}) {
    try {
      parse_mmap_flags(bad);
      FAIL() << "expected an error for " << bad;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("SD_MMAP_FLAGS"), std::string::npos) << message;
      EXPECT_NE(message.find("sequential, populate, willneed, dontneed"), std::string::npos)
          << message;
    }
  }
  try {
    parse_mmap_flags("populate, bogus ");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bogus'"), std::string::npos) << e.what();
  }
}

TEST_F(PageCacheTest, AdviseAcceptsOddRanges) {
  const fs::path path = dir_ / "model.bin";
  const uint64_t size = 3 * 4096 + 123;
  write_synced_file(path, size);
  constexpr uint64_t kAll = std::numeric_limits<uint64_t>::max();
  const std::pair<uint64_t, uint64_t> ranges[] = {{0, 0},       {1, 1},        {4095, 2},
                                                  {4097, 8190}, {size - 1, 1}, {size, 0},
                                                  {size, 10},   {0, kAll},     {77, kAll}};
  for (MapMode mode : {MapMode::ReadOnly, MapMode::CopyOnWrite}) {
    const MappedFile file = MappedFile::open(path, mode);
    for (Hint hint : {Hint::Sequential, Hint::WillNeed, Hint::DontNeed}) {
      for (const auto& [offset, len] : ranges) {
        EXPECT_NO_THROW(advise(file, offset, len, hint)) << offset << "+" << len;
        EXPECT_LE(resident_bytes(file, offset, len), std::min(len, size - offset));
      }
    }
    try {
      advise(file, size + 1, 1, Hint::WillNeed);
      FAIL() << "an offset past the end must be an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
    EXPECT_THROW(resident_bytes(file, size + 4096, 0), Error);
  }
}

TEST_F(PageCacheTest, ZeroLengthFileHasNothingResident) {
  const fs::path path = dir_ / "empty.bin";
  write_synced_file(path, 0);
  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  EXPECT_NO_THROW(advise(file, 0, 100, Hint::WillNeed));
  EXPECT_EQ(resident_bytes(file, 0, 100), 0u);
  EXPECT_EQ(evict_range(file, 0, 0), 0u);
  EXPECT_EQ(file_resident_bytes(path.string()), 0u);
}

// mincore sees what was touched, and evicting makes the pages leave again.
TEST_F(PageCacheTest, ResidencyFollowsTouchesAndEviction) {
  if (on_tmpfs(dir_.path()))
    GTEST_SKIP() << dir_.path() << " is on tmpfs, whose pages cannot be evicted";
  const fs::path path = dir_ / "model.bin";
  const uint64_t size = 64 * kMiB;
  write_synced_file(path, size);
  evict_file(path.string());
  const uint64_t cold = file_resident_bytes(path.string());
  EXPECT_LT(cold, kMiB);

  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  // Without read-ahead the kernel brings in exactly the pages touched.
  ASSERT_EQ(madvise(const_cast<std::byte*>(file.bytes().data()), size, MADV_RANDOM), 0);
  const uint64_t begin = 16 * kMiB;
  const uint64_t len = 16 * kMiB;
  touch_pages(file, begin, begin + len);
  EXPECT_EQ(resident_bytes(file, begin, len), len);
  EXPECT_LT(resident_bytes(file, 48 * kMiB, 16 * kMiB), kMiB);
  const uint64_t warm = resident_bytes(file, 0, size);
  EXPECT_GE(warm, cold + len);
  EXPECT_LE(warm, cold + len + 2 * kMiB);
  EXPECT_EQ(file_resident_bytes(path.string()), warm);

  // Partial pages count only their part inside the range.
  EXPECT_EQ(resident_bytes(file, begin + 100, 4096), 4096u);
  EXPECT_EQ(resident_bytes(file, begin - 100, 200), 100u);
  EXPECT_EQ(resident_bytes(file, begin + len - 50, 100), 50u);

  EXPECT_LT(evict_range(file, begin, len), kMiB);
  EXPECT_LT(resident_bytes(file, 0, size), 2 * kMiB);
}

TEST_F(PageCacheTest, ReadingTheWholeFileMakesItResident) {
  if (on_tmpfs(dir_.path()))
    GTEST_SKIP() << dir_.path() << " is on tmpfs, whose pages cannot be evicted";
  const fs::path path = dir_ / "model.bin";
  const uint64_t size = 4 * kMiB + 777;
  write_synced_file(path, size);
  evict_file(path.string());
  EXPECT_LT(file_resident_bytes(path.string()), kMiB);
  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  touch_pages(file, 0, size);
  EXPECT_EQ(resident_bytes(file, 0, size), size);
  EXPECT_EQ(file_resident_bytes(path.string()), size);
}

TEST_F(PageCacheTest, EvictingCopyOnWriteKeepsPatchedBytes) {
  const fs::path path = dir_ / "model.bin";
  write_synced_file(path, 4 * 4096);
  MappedFile file = MappedFile::open(path, MapMode::CopyOnWrite);
  std::span<std::byte> w = file.writable_bytes();
  w[5000] = std::byte{0xAB};
  w[9000] = std::byte{0xCD};
  evict_range(file, 0, file.size());
  EXPECT_EQ(file.bytes()[5000], std::byte{0xAB});
  EXPECT_EQ(file.bytes()[9000], std::byte{0xCD});
  advise(file, 4096, 8192, Hint::DontNeed);
  EXPECT_EQ(file.bytes()[5000], std::byte{0xAB});
}

TEST_F(PageCacheTest, EvictFileOfMissingPathIsAnError) {
  const fs::path path = dir_ / "missing.bin";
  try {
    evict_file(path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(file_resident_bytes(path.string()), Error);
}

}  // namespace
}  // namespace ebb
