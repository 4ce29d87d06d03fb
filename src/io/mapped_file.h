#pragma once
// A whole model file mapped into memory, so weights are read zero-copy and the kernel's page
// cache is the only copy in RAM.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

namespace ebb {

enum class MapMode {
  ReadOnly,     // MAP_SHARED + PROT_READ: pages are the page cache's own.
  CopyOnWrite,  // MAP_PRIVATE + PROT_READ|PROT_WRITE: writes (e.g. a LoRA patched in place)
                // copy the touched pages privately and never reach the file.
};

// What identifies the file's content when it was opened; a change means the mapping may no
// longer hold what the format parser saw, and touching pages past a truncation raises SIGBUS.
struct FileIdentity {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  dev_t device = 0;
  ino_t inode = 0;
};

class MappedFile {
 public:
  // `populate` prefaults the whole file at open (SD_MMAP_FLAGS=populate). For CopyOnWrite it
  // uses MADV_POPULATE_READ, because MAP_POPULATE on a private writable mapping would copy
  // every page into anonymous memory and double the footprint.
  static MappedFile open(const std::string& path, MapMode mode, bool populate = false);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::string& path() const { return path_; }
  uint64_t size() const { return opened_.size; }
  MapMode mode() const { return mode_; }
  // Stays open for posix_fadvise on the file's page cache.
  int fd() const { return fd_; }

  std::span<const std::byte> bytes() const { return {data_, static_cast<size_t>(size())}; }
  // CopyOnWrite only: a ReadOnly mapping would fault on the first write.
  std::span<std::byte> writable_bytes();

  // True when the file behind the path no longer matches what was opened: its size, mtime,
  // or inode (replaced, e.g. by a rename over it) differ, or the path is gone.
  bool changed_on_disk() const;
  // Throws ebb::Error describing the change; the weight store calls it before each load.
  void check_unchanged() const;

 private:
  MappedFile(std::string path, MapMode mode, int fd, std::byte* data, FileIdentity opened)
      : path_(std::move(path)), mode_(mode), fd_(fd), data_(data), opened_(opened) {}
  void release() noexcept;

  std::string path_;
  MapMode mode_ = MapMode::ReadOnly;
  int fd_ = -1;
  std::byte* data_ = nullptr;  // null for a zero-length file: mmap refuses length 0
  FileIdentity opened_;
};

}  // namespace ebb
