#pragma once
// Reads byte ranges of a file into caller buffers without filling the page cache: weights that
// are copied once into host or device memory need not also sit in the cache, counted twice.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace ebb {

struct DirectReadOptions {
  // Off: buffered reads, each followed by posix_fadvise(DONTNEED) of its range.
  bool use_o_direct = true;
  // Off, or when the kernel refuses io_uring: one synchronous pread at a time.
  bool use_io_uring = true;
  // Piece size of each read, a multiple of 4096 up to 1 GiB; with io_uring `queue_depth`
  // pieces (1 to 256) are in flight at once. Unaligned reads go through a bounce buffer of up
  // to chunk_bytes per queue slot, kept for the reader's lifetime.
  uint32_t chunk_bytes = 8u << 20;
  uint32_t queue_depth = 4;
};

// One reader serves one thread at a time: the bounce buffer and ring are shared by reads.
class DirectReader {
 public:
  // Falls back to buffered reads (direct() == false) when the filesystem refuses O_DIRECT.
  static DirectReader open(const std::string& path, const DirectReadOptions& options = {});

  DirectReader(DirectReader&&) noexcept;
  DirectReader& operator=(DirectReader&&) noexcept;
  ~DirectReader();

  // Fills `dst` with the file's bytes at [offset, offset + dst.size()), any alignment; a range
  // past the end of the file is an ebb::Error. Reads land straight in `dst` where its address
  // and `offset` are equally aligned (e.g. both 4096-aligned); the rest goes through the
  // bounce buffer.
  void read(uint64_t offset, std::span<std::byte> dst);

  const std::string& path() const;
  uint64_t size() const;  // as seen at open
  bool direct() const;
  // "io_uring+O_DIRECT", "pread+O_DIRECT" or "pread+fadvise", for logs.
  const char* method() const;

 private:
  struct State;
  explicit DirectReader(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ebb
