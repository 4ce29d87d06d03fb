#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace ebb {
namespace {

constexpr size_t kBufferBytes = size_t{1} << 20;

std::string error_text(int error) {
  return std::generic_category().message(error);
}

std::string random_suffix() {
  std::random_device device;
  return fmt::format("{:08x}", device());
}

std::filesystem::path directory_of(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

// The rename is already done when this runs; syncing the directory makes the new name durable.
// Filesystems that cannot sync a directory say EINVAL, which is not a failure of the write.
void sync_directory(const std::string& path) {
  const std::string dir = directory_of(path).string();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open directory {} to sync it: {}", dir, error_text(errno));
  int rc = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (rc != 0 && error != EINVAL) fail("cannot sync directory {}: {}", dir, error_text(error));
}

// Renames without replacing an existing target when `overwrite` is false, so a file created
// by someone else after create() checked is never clobbered.
int rename_into_place(const std::string& from, const std::string& to, bool overwrite) {
  if (overwrite) return ::rename(from.c_str(), to.c_str());
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  // The filesystem cannot refuse atomically; check, then rename.
  struct stat st;
  if (::lstat(to.c_str(), &st) == 0) {
    errno = EEXIST;
    return -1;
  }
  return ::rename(from.c_str(), to.c_str());
}

}  // namespace

AtomicFile AtomicFile::create(const std::string& path, bool overwrite) {
  const std::filesystem::path target(path);
  if (target.filename().empty()) fail("cannot write {}: not a file name", path);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail("cannot write {}: it is a directory", path);
    if (!overwrite) fail("refusing to overwrite existing file {}", path);
  }
  const std::string prefix =
      (directory_of(path) / fmt::format(".{}.tmp-{}-", target.filename().string(), ::getpid()))
          .string();
  for (int attempt = 0;; ++attempt) {
    std::string temp = prefix + random_suffix();
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return AtomicFile(path, std::move(temp), fd, overwrite);
    if (errno != EEXIST || attempt == 8)
      fail("cannot create a temporary file beside {}: {}", path, error_text(errno));
  }
}

AtomicFile::AtomicFile(std::string path, std::string temp_path, int fd, bool overwrite)
    : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd), overwrite_(overwrite) {}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::exchange(other.temp_path_, {})),
      fd_(std::exchange(other.fd_, -1)),
      overwrite_(other.overwrite_),
      committed_(other.committed_),
      size_(other.size_),
      flushed_(other.flushed_),
      buffer_(std::move(other.buffer_)) {}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::fail_io(const char* action, int error) const {
  fail("cannot {} {}: {}", action, path_, error_text(error));
}

void AtomicFile::write_fully(uint64_t offset, std::span<const std::byte> data) const {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_io("write", errno);
    }
    if (n == 0) fail_io("write", EIO);
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
}

void AtomicFile::flush() {
  if (buffer_.empty()) return;
  write_fully(flushed_, buffer_);
  flushed_ += buffer_.size();
  buffer_.clear();
}

void AtomicFile::write(std::span<const std::byte> data) {
  if (fd_ < 0) fail("cannot write {}: the file is already committed", path_);
  if (buffer_.size() + data.size() > kBufferBytes) flush();
  if (data.size() >= kBufferBytes) {
    write_fully(flushed_, data);
    flushed_ += data.size();
  } else {
    if (buffer_.capacity() < kBufferBytes) buffer_.reserve(kBufferBytes);
    buffer_.insert(buffer_.end(), data.begin(), data.end());
  }
  size_ += data.size();
}

uint64_t AtomicFile::reserve(uint64_t bytes) {
  if (fd_ < 0) fail("cannot write {}: the file is already committed", path_);
  flush();
  const uint64_t offset = flushed_;
  if (bytes > 0) {
    if (::fallocate(fd_, 0, static_cast<off_t>(offset), static_cast<off_t>(bytes)) != 0) {
      if (errno != EOPNOTSUPP) fail_io("allocate space for", errno);
      if (::ftruncate(fd_, static_cast<off_t>(offset + bytes)) != 0) fail_io("extend", errno);
    }
  }
  flushed_ += bytes;
  size_ += bytes;
  return offset;
}

void AtomicFile::write_at(uint64_t offset, std::span<const std::byte> data) const {
  if (fd_ < 0) fail("cannot write {}: the file is already committed", path_);
  if (offset > flushed_ || data.size() > flushed_ - offset)
    fail("cannot write {}: {} bytes at offset {} lie beyond the {} bytes reserved", path_,
         data.size(), offset, flushed_);
  write_fully(offset, data);
}

void AtomicFile::commit() {
  if (fd_ < 0) fail("cannot commit {}: already committed", path_);
  flush();
  if (::fsync(fd_) != 0) fail_io("sync", errno);
  int rc = ::close(std::exchange(fd_, -1));
  if (rc != 0) fail_io("close", errno);
  if (rename_into_place(temp_path_, path_, overwrite_) != 0) {
    if (errno == EEXIST) fail("refusing to overwrite existing file {}", path_);
    fail("cannot rename {} to {}: {}", temp_path_, path_, error_text(errno));
  }
  committed_ = true;
  sync_directory(path_);
}

}  // namespace ebb
