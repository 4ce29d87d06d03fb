#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace ebb {
namespace {

FileIdentity identity_of(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec, st.st_dev,
          st.st_ino};
}

// Empty when the file still matches `opened`, else what changed, for the error message.
std::string describe_change(const std::string& path, int fd, const FileIdentity& opened) {
  struct stat st;
  if (fstat(fd, &st) != 0) return fmt::format("fstat failed: {}", std::strerror(errno));
  const FileIdentity mapped = identity_of(st);
  if (mapped.size != opened.size) return fmt::format("size {} → {}", opened.size, mapped.size);
  if (mapped.mtime_ns != opened.mtime_ns) {
    return fmt::format("modification time changed, size still {}", opened.size);
  }
  if (stat(path.c_str(), &st) != 0) {
    return fmt::format("the path no longer opens: {}", std::strerror(errno));
  }
  if (st.st_dev != opened.device || st.st_ino != opened.inode) {
    return "the path now names a different file";
  }
  return {};
}

}  // namespace

MappedFile MappedFile::open(const std::string& path, MapMode mode, bool populate) {
  // O_NONBLOCK so a FIFO at the path is rejected below instead of blocking the open; regular
  // files ignore the flag. MAP_PRIVATE needs only read access, even with PROT_WRITE.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("cannot open model file {}: {}", path, std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("cannot stat model file {}: {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("cannot map {}: {}", path,
         S_ISDIR(st.st_mode) ? "it is a directory" : "it is not a regular file");
  }
  const FileIdentity opened = identity_of(st);
  if (opened.size == 0) return MappedFile(path, mode, fd, nullptr, opened);

  const bool cow = mode == MapMode::CopyOnWrite;
  const int prot = cow ? PROT_READ | PROT_WRITE : PROT_READ;
  const int flags = (cow ? MAP_PRIVATE : MAP_SHARED) | (populate && !cow ? MAP_POPULATE : 0);
  void* data = mmap(nullptr, opened.size, prot, flags, fd, 0);
  if (data == MAP_FAILED) {
    const int err = errno;
    ::close(fd);
    fail("cannot map model file {} ({} bytes): {}", path, opened.size, std::strerror(err));
  }
  // A prefault is only a speed-up: on kernels without MADV_POPULATE_READ (before 5.14) the
  // pages fault in on first use instead.
  if (populate && cow) madvise(data, opened.size, MADV_POPULATE_READ);
  return MappedFile(path, mode, fd, static_cast<std::byte*>(data), opened);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      mode_(other.mode_),
      fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      opened_(std::exchange(other.opened_, {})) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    mode_ = other.mode_;
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    opened_ = std::exchange(other.opened_, {});
  }
  return *this;
}

MappedFile::~MappedFile() {
  release();
}

void MappedFile::release() noexcept {
  if (data_ != nullptr) munmap(data_, opened_.size);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  fd_ = -1;
}

std::span<std::byte> MappedFile::writable_bytes() {
  if (mode_ != MapMode::CopyOnWrite) {
    fail("model file {} is mapped read-only; writing needs a copy-on-write mapping", path_);
  }
  return {data_, static_cast<size_t>(size())};
}

bool MappedFile::changed_on_disk() const {
  return !describe_change(path_, fd_, opened_).empty();
}

void MappedFile::check_unchanged() const {
  const std::string change = describe_change(path_, fd_, opened_);
  if (!change.empty())
    fail("model file {} changed on disk since it was opened ({})", path_, change);
}

}  // namespace ebb
