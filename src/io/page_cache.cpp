#include "io/page_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace ebb {
namespace {

uint64_t page_size() {
  static const uint64_t size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return size;
}

// `bytes` is the requested range clipped to the file; `pages` the same range widened to whole
// pages, as madvise, mincore and a whole-page posix_fadvise need.
struct Range {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t length() const { return end - begin; }
};
struct ClippedRange {
  Range bytes;
  Range pages;
};

ClippedRange clip(const MappedFile& file, uint64_t offset, uint64_t len) {
  if (offset > file.size()) {
    fail("byte range at offset {} lies past the end of model file {} ({} bytes)", offset,
         file.path(), file.size());
  }
  const uint64_t end = offset + std::min(len, file.size() - offset);
  const uint64_t page = page_size();
  return {{offset, end}, {offset / page * page, (end + page - 1) / page * page}};
}

const char* hint_name(Hint hint) {
  switch (hint) {
    case Hint::Sequential:
      return "sequential";
    case Hint::WillNeed:
      return "willneed";
    case Hint::DontNeed:
      return "dontneed";
    case Hint::Random:
      return "random";
    case Hint::Normal:
      return "normal";
    case Hint::Unmap:
      return "unmap";
  }
  return "?";
}

void* address_of(const MappedFile& file, uint64_t offset) {
  // madvise and mincore take a non-const pointer but change no bytes.
  return const_cast<std::byte*>(file.bytes().data()) + offset;
}

}  // namespace

void advise(const MappedFile& file, uint64_t offset, uint64_t len, Hint hint) {
  const ClippedRange range = clip(file, offset, len);
  if (range.bytes.length() == 0) return;
  int madvice = MADV_NORMAL;
  int fadvice = POSIX_FADV_NORMAL;
  switch (hint) {
    case Hint::Sequential:
      madvice = MADV_SEQUENTIAL;
      fadvice = POSIX_FADV_SEQUENTIAL;
      break;
    case Hint::WillNeed:
      madvice = MADV_WILLNEED;
      fadvice = POSIX_FADV_WILLNEED;
      break;
    case Hint::DontNeed:
      madvice = MADV_DONTNEED;
      fadvice = POSIX_FADV_DONTNEED;
      break;
    case Hint::Random:
      madvice = MADV_RANDOM;
      fadvice = POSIX_FADV_RANDOM;
      break;
    case Hint::Normal:
      break;
    case Hint::Unmap:
      madvice = MADV_DONTNEED;
      break;
  }
  const Range& pages = range.pages;
  const bool keeps_private_pages =
      (hint == Hint::DontNeed || hint == Hint::Unmap) && file.mode() == MapMode::CopyOnWrite;
  if (!keeps_private_pages &&
      madvise(address_of(file, pages.begin), pages.length(), madvice) != 0) {
    fail("madvise({}) on bytes [{}, {}) of model file {} failed: {}", hint_name(hint), pages.begin,
         pages.end, file.path(), std::strerror(errno));
  }
  if (hint == Hint::Unmap) return;
  const int err = posix_fadvise(file.fd(), static_cast<off_t>(pages.begin),
                                static_cast<off_t>(pages.length()), fadvice);
  if (err != 0) {
    fail("posix_fadvise({}) on bytes [{}, {}) of model file {} failed: {}", hint_name(hint),
         pages.begin, pages.end, file.path(), std::strerror(err));
  }
}

uint64_t resident_bytes(const MappedFile& file, uint64_t offset, uint64_t len) {
  const ClippedRange range = clip(file, offset, len);
  if (range.bytes.length() == 0) return 0;
  const uint64_t page = page_size();
  // mincore one window at a time so a many-gigabyte file needs no gigantic status vector, and
  // a small range no window-sized one (the store samples every component's range at each stage
  // end, while the device may wait).
  constexpr uint64_t kWindowPages = 64 * 1024;
  std::vector<unsigned char> status(std::min(kWindowPages, range.pages.length() / page));
  uint64_t resident = 0;
  for (uint64_t at = range.pages.begin; at < range.pages.end; at += kWindowPages * page) {
    const uint64_t bytes = std::min(kWindowPages * page, range.pages.end - at);
    if (mincore(address_of(file, at), bytes, status.data()) != 0) {
      fail("mincore on bytes [{}, {}) of model file {} failed: {}", at, at + bytes, file.path(),
           std::strerror(errno));
    }
    for (uint64_t i = 0; i < bytes / page; ++i) {
      if ((status[i] & 1) == 0) continue;
      const uint64_t page_begin = at + i * page;
      resident +=
          std::min(page_begin + page, range.bytes.end) - std::max(page_begin, range.bytes.begin);
    }
  }
  return resident;
}

uint64_t evict_range(const MappedFile& file, uint64_t offset, uint64_t len) {
  advise(file, offset, len, Hint::DontNeed);
  return resident_bytes(file, offset, len);
}

void evict_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("cannot open {} to drop its cached pages: {}", path, std::strerror(errno));
  const int err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (err != 0) fail("posix_fadvise(dontneed) on {} failed: {}", path, std::strerror(err));
}

uint64_t file_resident_bytes(const std::string& path) {
  const MappedFile file = MappedFile::open(path, MapMode::ReadOnly);
  return resident_bytes(file, 0, file.size());
}

MmapFlags parse_mmap_flags(std::string_view comma_list) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  MmapFlags flags;
  while (!comma_list.empty()) {
    const size_t comma = comma_list.find(',');
    std::string_view word = comma_list.substr(0, comma);
    comma_list =
        comma == std::string_view::npos ? std::string_view{} : comma_list.substr(comma + 1);
    const size_t first = word.find_first_not_of(kSpace);
    if (first == std::string_view::npos) continue;
    word = word.substr(first, word.find_last_not_of(kSpace) - first + 1);
    if (word == "sequential") {
      flags.sequential = true;
    } else if (word == "populate") {
      flags.populate = true;
    } else if (word == "willneed") {
      flags.willneed = true;
    } else if (word == "dontneed") {
      flags.dontneed = true;
    } else {
      fail("SD_MMAP_FLAGS: unknown flag '{}' (valid: sequential, populate, willneed, dontneed)",
           word);
    }
  }
  return flags;
}

}  // namespace ebb
