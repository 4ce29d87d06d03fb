#pragma once
// Streaming from owned reads (--no-mmap, --direct-io): a thread of its own reads the blocks
// ahead of the one computing into host buffers the device copies from at full speed (the
// pinned pool on a GPU), so reading overlaps compute instead of stalling the thread that
// enqueues it. Reads run in the order they were asked for; a failed read is rethrown by the
// future's get().
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "io/direct_reader.h"
#include "tensor/storage.h"

namespace ebb {

// Bytes [offset, offset + bytes) of file `file`, read to position `at` of the buffer.
struct ReadRange {
  uint32_t file = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  uint64_t at = 0;
};

// Where each piece (a tensor) lands in the buffer of a block read: pieces of one file that lie
// close together are read as one range, and each range starts at the same offset modulo the
// direct-I/O alignment as in the file, so O_DIRECT reads land in place with no bounce copy.
struct ReadLayout {
  std::vector<ReadRange> ranges;
  std::vector<uint64_t> piece_at;  // parallel to the pieces given
  uint64_t bytes = 0;              // the buffer size
};
// pieces: (file, offset, bytes) of each tensor. `packed`: only pieces that touch join a range
// and ranges follow each other with no padding, so the buffer holds exactly the pieces' bytes
// (reads of unaligned ranges then go through the direct reader's bounce buffer).
ReadLayout layout_block_read(const std::vector<ReadRange>& pieces, bool packed = false);

class BlockReader {
 public:
  using Buffer = std::shared_ptr<Storage>;
  BlockReader(std::vector<std::string> paths, DirectReadOptions options,
              std::function<Buffer(uint64_t)> allocate);
  // Stops after the read in progress; reads still queued are abandoned.
  ~BlockReader();
  BlockReader(const BlockReader&) = delete;
  BlockReader& operator=(const BlockReader&) = delete;

  // Into a buffer from the allocator given at construction, or into `into` (at least
  // layout.bytes; the caller keeps it from other use until the read completed).
  std::shared_future<Buffer> read(const ReadLayout& layout, Buffer into = nullptr);
  // Blocks until every queued read is done and the reader holds no buffer: a finished read's
  // job lets go of its buffer only after the caller may have seen the result.
  void wait_idle();

 private:
  struct Job {
    ReadLayout layout;
    Buffer into;
    std::promise<Buffer> done;
  };
  void run();
  void read_into(const ReadLayout& layout, std::byte* buffer);

  std::vector<std::string> paths_;
  DirectReadOptions options_;
  std::function<Buffer(uint64_t)> allocate_;
  std::vector<std::optional<DirectReader>> readers_;  // per file, opened at first read
  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  bool busy_ = false;  // a job is being read or still held
  std::thread thread_;
};

}  // namespace ebb
