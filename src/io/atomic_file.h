#pragma once
// Every file Ebb writes goes through AtomicFile: the bytes go to a temporary file beside the
// target (`.<name>.tmp-<pid>-<random>`), which is synced and renamed over the target only on
// commit(). A crash, an exception or a full disk therefore never leaves a half-written file
// under the real name, and a file that is not committed is removed.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ebb {

class AtomicFile {
 public:
  // Opens the temporary file. Fails when `path` exists and `overwrite` is false, or when it is a
  // directory.
  static AtomicFile create(const std::string& path, bool overwrite);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  // Appends `data` (buffered; large writes go straight to the file).
  void write(std::span<const std::byte> data);
  // Bytes appended so far.
  uint64_t tell() const { return size_; }

  // Appends `bytes` bytes of space, allocated on disk now so that a full disk is reported
  // before any work is done, and returns their offset. They read as zeros until filled with
  // write_at().
  uint64_t reserve(uint64_t bytes);
  // Writes `data` at `offset`, which must lie in space already appended. Safe to call from
  // several threads at once for distinct ranges.
  void write_at(uint64_t offset, std::span<const std::byte> data) const;

  // Flushes, syncs and renames the temporary file to the target path.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFile(std::string path, std::string temp_path, int fd, bool overwrite);
  void flush();
  void write_fully(uint64_t offset, std::span<const std::byte> data) const;
  [[noreturn]] void fail_io(const char* action, int error) const;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool overwrite_ = false;
  bool committed_ = false;
  uint64_t size_ = 0;     // appended, buffered bytes included
  uint64_t flushed_ = 0;  // in the file
  std::vector<std::byte> buffer_;
};

}  // namespace ebb
