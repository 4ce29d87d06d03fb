#include "io/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

#include "core/error.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class AtomicFileTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_ / name; }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_.path()))
      names.push_back(entry.path().filename().string());
    return names;
  }
  static std::string read(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static void write_text(AtomicFile& file, std::string_view text) {
    file.write(std::as_bytes(std::span(text)));
  }

  test::TempDir dir_;
};

TEST_F(AtomicFileTest, CommitMakesExactlyTheWrittenBytesAppear) {
  std::string big(3 << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : big) c = static_cast<char>(rng());
  {
    AtomicFile file = AtomicFile::create(path("out.bin"), false);
    write_text(file, "head");
    write_text(file, big);  // larger than the buffer: written directly
    write_text(file, "tail");
    EXPECT_EQ(file.tell(), 8 + big.size());
    EXPECT_FALSE(fs::exists(path("out.bin")));
    file.commit();
  }
  EXPECT_EQ(read(path("out.bin")), "head" + big + "tail");
  EXPECT_THAT(entries(), ::testing::ElementsAre("out.bin"));
}

TEST_F(AtomicFileTest, TemporaryLivesBesideTheTargetUntilCommit) {
  AtomicFile file = AtomicFile::create(path("model.safetensors"), false);
  const std::string temp = fs::path(file.temp_path()).filename().string();
  EXPECT_THAT(temp, ::testing::StartsWith(fmt::format(".model.safetensors.tmp-{}-", getpid())));
  EXPECT_THAT(entries(), ::testing::ElementsAre(temp));
  file.commit();
  EXPECT_THAT(entries(), ::testing::ElementsAre("model.safetensors"));
}

TEST_F(AtomicFileTest, ExceptionBeforeCommitLeavesNothingBehind) {
  EXPECT_THROW(
      {
        AtomicFile file = AtomicFile::create(path("half.bin"), false);
        write_text(file, std::string(5 << 20, 'x'));
        throw std::runtime_error("fill failed");
      },
      std::runtime_error);
  EXPECT_TRUE(entries().empty());
}

TEST_F(AtomicFileTest, RefusesToOverwriteWithoutPermission) {
  std::ofstream(path("kept.bin")) << "original";
  try {
    AtomicFile::create(path("kept.bin"), false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("refusing to overwrite existing file " + path("kept.bin")));
  }
  EXPECT_EQ(read(path("kept.bin")), "original");
  EXPECT_THAT(entries(), ::testing::ElementsAre("kept.bin"));
}

TEST_F(AtomicFileTest, RefusesWhenTheTargetAppearsBeforeCommit) {
  {
    AtomicFile file = AtomicFile::create(path("race.bin"), false);
    write_text(file, "mine");
    std::ofstream(path("race.bin")) << "theirs";
    EXPECT_THROW(file.commit(), Error);
  }
  EXPECT_EQ(read(path("race.bin")), "theirs");
  EXPECT_THAT(entries(), ::testing::ElementsAre("race.bin"));
}

TEST_F(AtomicFileTest, OverwriteReplacesTheTarget) {
  std::ofstream(path("model.bin")) << "a much longer original content";
  {
    AtomicFile file = AtomicFile::create(path("model.bin"), true);
    write_text(file, "new");
    EXPECT_EQ(read(path("model.bin")), "a much longer original content");
    file.commit();
  }
  EXPECT_EQ(read(path("model.bin")), "new");
  EXPECT_THAT(entries(), ::testing::ElementsAre("model.bin"));
}

TEST_F(AtomicFileTest, ReservedSpaceIsZeroAndFilledByPositionedWritesFromThreads) {
  const uint64_t region = 4 << 20;
  {
    AtomicFile file = AtomicFile::create(path("data.bin"), false);
    write_text(file, "hdr");
    const uint64_t base = file.reserve(region);
    EXPECT_EQ(base, 3u);
    EXPECT_EQ(file.tell(), 3 + region);
    // Two threads fill alternate 64 KiB pieces of the first half; the second half stays zero.
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        std::vector<std::byte> piece(64 << 10, std::byte(t + 1));
        for (uint64_t at = t * piece.size(); at < region / 2; at += 2 * piece.size())
          file.write_at(base + at, piece);
      });
    }
    for (auto& thread : threads) thread.join();
    write_text(file, "end");
    file.commit();
  }
  const std::string bytes = read(path("data.bin"));
  ASSERT_EQ(bytes.size(), 3 + region + 3);
  EXPECT_EQ(bytes.substr(0, 3), "hdr");
  EXPECT_EQ(bytes.substr(3 + region), "end");
  for (uint64_t i = 0; i < region; ++i) {
    const char expected = i < region / 2 ? static_cast<char>((i / (64 << 10)) % 2 + 1) : 0;
    ASSERT_EQ(bytes[3 + i], expected) << "at " << i;
  }
}

TEST_F(AtomicFileTest, PositionedWriteOutsideReservedSpaceFails) {
  AtomicFile file = AtomicFile::create(path("data.bin"), false);
  const uint64_t base = file.reserve(16);
  std::vector<std::byte> bytes(8);
  EXPECT_NO_THROW(file.write_at(base + 8, bytes));
  EXPECT_THROW(file.write_at(base + 9, bytes), Error);
}

TEST_F(AtomicFileTest, ErrorsNameThePathAndTheSystemReason) {
  const std::string missing = path("no/such/dir/out.bin");
  try {
    AtomicFile::create(missing, false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(missing));
    EXPECT_THAT(e.what(), HasSubstr("No such file or directory"));
  }
  EXPECT_THROW(AtomicFile::create(dir_.path().string(), true), Error);
}

TEST_F(AtomicFileTest, FileSizeLimitIsReportedAndLeavesNothingBehind) {
  // A file-size limit fails writes the way a full disk does, without filling one.
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit limit = old_limit;
  limit.rlim_cur = 1 << 20;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  try {
    AtomicFile file = AtomicFile::create(path("big.bin"), false);
    write_text(file, "header");
    file.reserve(4 << 20);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path("big.bin")));
    EXPECT_THAT(e.what(), HasSubstr("File too large"));
  }
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  EXPECT_TRUE(entries().empty());
}

TEST_F(AtomicFileTest, MovedFileCommitsOnce) {
  AtomicFile first = AtomicFile::create(path("moved.bin"), false);
  write_text(first, "abc");
  AtomicFile second(std::move(first));
  second.commit();
  EXPECT_EQ(read(path("moved.bin")), "abc");
  EXPECT_THROW(second.commit(), Error);
}

}  // namespace
}  // namespace ebb
