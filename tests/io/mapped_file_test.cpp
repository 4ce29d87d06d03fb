#include "io/mapped_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
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

void write_file(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

bool same(std::span<const std::byte> a, const Bytes& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// The kernel's own account of one mapping, from /proc/self/smaps: `field` in kB.
uint64_t smaps_kb(const void* mapping, const std::string& field) {
  std::ifstream smaps("/proc/self/smaps");
  std::ostringstream start;
  start << std::hex << reinterpret_cast<uintptr_t>(mapping) << "-";
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    if (line.rfind(start.str(), 0) == 0) inside = true;
    if (inside && line.rfind(field + ":", 0) == 0) {
      return std::stoull(line.substr(field.size() + 1));
    }
  }
  ADD_FAILURE() << "no " << field << " for the mapping in /proc/self/smaps";
  return 0;
}

class MappedFileTest : public ::testing::Test {
 protected:
  test::TempDir dir_;
};

TEST_F(MappedFileTest, ReadOnlyMapsTheFileAtAnySize) {
  for (size_t size : {size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{3 * 4096 + 17}}) {
    const fs::path path = dir_ / ("f" + std::to_string(size));
    const Bytes content = random_bytes(size, static_cast<uint32_t>(size));
    write_file(path, content);
    const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
    EXPECT_EQ(file.path(), path.string());
    EXPECT_EQ(file.size(), size);
    EXPECT_EQ(file.mode(), MapMode::ReadOnly);
    EXPECT_GE(file.fd(), 0);
    EXPECT_TRUE(same(file.bytes(), content)) << "size " << size;
  }
}

TEST_F(MappedFileTest, CopyOnWriteChangesTheMappingButNotTheFile) {
  const fs::path path = dir_ / "weights.bin";
  const Bytes content = random_bytes(3 * 4096 + 5, 7);
  write_file(path, content);
  Bytes patched = content;
  {
    MappedFile file = MappedFile::open(path, MapMode::CopyOnWrite);
    EXPECT_EQ(file.mode(), MapMode::CopyOnWrite);
    std::span<std::byte> w = file.writable_bytes();
    ASSERT_EQ(w.size(), content.size());
    for (size_t at : {size_t{0}, size_t{4096}, size_t{8000}, content.size() - 1}) {
      w[at] = ~w[at];
      patched[at] = ~patched[at];
    }
    EXPECT_TRUE(same(file.bytes(), patched));
    EXPECT_EQ(read_file(path), content);
    EXPECT_FALSE(file.changed_on_disk());
  }
  EXPECT_EQ(read_file(path), content);
  const MappedFile again = MappedFile::open(path, MapMode::CopyOnWrite);
  EXPECT_TRUE(same(again.bytes(), content));
}

TEST_F(MappedFileTest, WritableBytesOfReadOnlyMappingIsAnError) {
  const fs::path path = dir_ / "ro.bin";
  write_file(path, random_bytes(10, 1));
  MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  try {
    file.writable_bytes();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST_F(MappedFileTest, ZeroLengthFileHasEmptySpans) {
  const fs::path path = dir_ / "empty.bin";
  write_file(path, {});
  for (MapMode mode : {MapMode::ReadOnly, MapMode::CopyOnWrite}) {
    MappedFile file = MappedFile::open(path, mode, /*populate=*/true);
    EXPECT_EQ(file.size(), 0u);
    EXPECT_TRUE(file.bytes().empty());
    if (mode == MapMode::CopyOnWrite) {
      EXPECT_TRUE(file.writable_bytes().empty());
    }
    EXPECT_FALSE(file.changed_on_disk());
    EXPECT_NO_THROW(file.check_unchanged());
  }
}

void expect_open_error(const fs::path& path, const std::string& reason) {
  try {
    MappedFile::open(path, MapMode::ReadOnly);
    FAIL() << "expected an error for " << path;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(reason), std::string::npos) << message;
  }
}

TEST_F(MappedFileTest, DirectoryIsAnError) {
  expect_open_error(dir_.path(), "directory");
}

TEST_F(MappedFileTest, MissingFileIsAnError) {
  expect_open_error(dir_ / "missing.safetensors", std::strerror(ENOENT));
}

TEST_F(MappedFileTest, UnreadableFileIsAnError) {
  const fs::path path = dir_ / "locked.bin";
  write_file(path, random_bytes(10, 2));
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  if (access(path.c_str(), R_OK) == 0) {
    GTEST_SKIP() << "this process may read a mode-000 file (running as root), so permission "
                    "denial cannot be produced";
  }
  expect_open_error(path, std::strerror(EACCES));
}

TEST_F(MappedFileTest, MoveHandsTheMappingOver) {
  const fs::path a_path = dir_ / "a.bin";
  const fs::path b_path = dir_ / "b.bin";
  const Bytes a = random_bytes(5000, 3);
  const Bytes b = random_bytes(7000, 4);
  write_file(a_path, a);
  write_file(b_path, b);
  MappedFile first = MappedFile::open(a_path, MapMode::ReadOnly);
  MappedFile moved(std::move(first));
  EXPECT_TRUE(same(moved.bytes(), a));
  moved = MappedFile::open(b_path, MapMode::CopyOnWrite);
  EXPECT_TRUE(same(moved.bytes(), b));
  EXPECT_EQ(moved.path(), b_path.string());
  EXPECT_EQ(moved.mode(), MapMode::CopyOnWrite);
}

// Each change below leaves the mapping untouched afterwards: reading past a truncation would
// raise SIGBUS, which is what check_unchanged is there to prevent.
std::string change_message(const MappedFile& file) {
  EXPECT_TRUE(file.changed_on_disk());
  try {
    file.check_unchanged();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "check_unchanged did not throw";
  return {};
}

TEST_F(MappedFileTest, UnchangedFileStaysUnchanged) {
  const fs::path path = dir_ / "model.bin";
  write_file(path, random_bytes(9000, 5));
  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  EXPECT_FALSE(file.changed_on_disk());
  EXPECT_NO_THROW(file.check_unchanged());
}

TEST_F(MappedFileTest, TruncationIsAChange) {
  const fs::path path = dir_ / "model.bin";
  write_file(path, random_bytes(9000, 5));
  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  fs::resize_file(path, 100);
  const std::string message = change_message(file);
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("size 9000 → 100"), std::string::npos) << message;
}

TEST_F(MappedFileTest, AppendingIsAChange) {
  const fs::path path = dir_ / "model.bin";
  write_file(path, random_bytes(4096, 6));
  const MappedFile file = MappedFile::open(path, MapMode::CopyOnWrite);
  std::ofstream(path, std::ios::binary | std::ios::app) << "more";
  EXPECT_NE(change_message(file).find("size 4096 → 4100"), std::string::npos);
}

TEST_F(MappedFileTest, RewriteInPlaceIsAChange) {
  const fs::path path = dir_ / "model.bin";
  write_file(path, random_bytes(4096, 6));
  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  // Same size; set the time explicitly since a rewrite within one timestamp tick keeps it.
  const timespec times[2] = {{0, UTIME_OMIT}, {1'000'000'000, 123}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  EXPECT_NE(change_message(file).find("modification time"), std::string::npos);
}

TEST_F(MappedFileTest, ReplacingThePathIsAChange) {
  const fs::path path = dir_ / "model.bin";
  const fs::path replacement = dir_ / "model.bin.new";
  write_file(path, random_bytes(4096, 6));
  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  write_file(replacement, random_bytes(4096, 7));
  fs::rename(replacement, path);
  EXPECT_NE(change_message(file).find("different file"), std::string::npos);
}

TEST_F(MappedFileTest, RemovingThePathIsAChange) {
  const fs::path path = dir_ / "model.bin";
  write_file(path, random_bytes(4096, 6));
  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  fs::remove(path);
  EXPECT_NE(change_message(file).find(std::strerror(ENOENT)), std::string::npos);
}

TEST_F(MappedFileTest, PopulateReadOnlyMakesEveryPageResident) {
  const fs::path path = dir_ / "model.bin";
  write_file(path, random_bytes(2 << 20, 8));
  evict_file(path);
  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly, /*populate=*/true);
  EXPECT_EQ(resident_bytes(file, 0, file.size()), file.size());
}

TEST_F(MappedFileTest, PopulateCopyOnWriteCopiesNoPage) {
  const fs::path path = dir_ / "model.bin";
  const Bytes content = random_bytes(2 << 20, 9);
  write_file(path, content);
  evict_file(path);
  const MappedFile file = MappedFile::open(path, MapMode::CopyOnWrite, /*populate=*/true);
  EXPECT_EQ(resident_bytes(file, 0, file.size()), file.size());
  EXPECT_EQ(smaps_kb(file.bytes().data(), "Rss"), content.size() / 1024);
  EXPECT_EQ(smaps_kb(file.bytes().data(), "Anonymous"), 0u);
  EXPECT_TRUE(same(file.bytes(), content));
}

}  // namespace
}  // namespace ebb
