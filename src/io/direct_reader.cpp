#include "io/direct_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#ifdef EBB_HAVE_URING
#include <liburing.h>
#endif

#include "core/checked_math.h"
#include "core/error.h"

namespace ebb {
namespace {

// O_DIRECT wants file offset, length and memory aligned to the device's logical block size;
// 4096 covers the usual 512 and 4096. A device with larger blocks fails the probe read at open
// and gets buffered reads.
constexpr uint64_t kDirectAlign = 4096;

uint64_t round_down(uint64_t x, uint64_t align) {
  return x / align * align;
}
uint64_t round_up(uint64_t x, uint64_t align) {
  return (x + align - 1) / align * align;
}
bool is_aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % kDirectAlign == 0;
}

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<std::byte, FreeDeleter>;

AlignedBuffer allocate_aligned(uint64_t bytes) {
  auto* p =
      static_cast<std::byte*>(std::aligned_alloc(kDirectAlign, round_up(bytes, kDirectAlign)));
  if (p == nullptr) fail("cannot allocate a {}-byte buffer for direct reads", bytes);
  return AlignedBuffer(p);
}

// Reads in flight, each tagged with a slot number below depth().
class ReadQueue {
 public:
  virtual ~ReadQueue() = default;
  virtual uint32_t depth() const = 0;
  virtual void submit(uint32_t slot, uint64_t offset, std::byte* dst, uint64_t len) = 0;
  // Waits for one read: its slot and the bytes read, or -errno.
  virtual std::pair<uint32_t, int64_t> wait() = 0;
};

// One read at a time: submit does the work, wait hands back its result.
class PreadQueue final : public ReadQueue {
 public:
  explicit PreadQueue(int fd) : fd_(fd) {}
  uint32_t depth() const override { return 1; }
  void submit(uint32_t slot, uint64_t offset, std::byte* dst, uint64_t len) override {
    const ssize_t n = pread(fd_, dst, len, static_cast<off_t>(offset));
    result_ = {slot, n < 0 ? -errno : n};
  }
  std::pair<uint32_t, int64_t> wait() override { return result_; }

 private:
  int fd_;
  std::pair<uint32_t, int64_t> result_{0, 0};
};

#ifdef EBB_HAVE_URING
class UringQueue final : public ReadQueue {
 public:
  // Null when the kernel refuses a ring (old kernel, seccomp, io_uring_disabled sysctl).
  static std::unique_ptr<UringQueue> create(int fd, uint32_t depth) {
    auto queue = std::unique_ptr<UringQueue>(new UringQueue(fd, depth));
    if (io_uring_queue_init(depth, &queue->ring_, 0) != 0) return nullptr;
    queue->ready_ = true;
    return queue;
  }
  ~UringQueue() override {
    if (ready_) io_uring_queue_exit(&ring_);
  }
  uint32_t depth() const override { return depth_; }
  void submit(uint32_t slot, uint64_t offset, std::byte* dst, uint64_t len) override {
    // At most depth() reads are in flight and the ring has depth() entries, so one is free.
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_read(sqe, fd_, dst, static_cast<unsigned>(len), offset);
    io_uring_sqe_set_data64(sqe, slot);
  }
  std::pair<uint32_t, int64_t> wait() override {
    const int submitted = io_uring_submit(&ring_);
    if (submitted < 0) fail("io_uring submit failed: {}", std::strerror(-submitted));
    io_uring_cqe* cqe = nullptr;
    int err;
    while ((err = io_uring_wait_cqe(&ring_, &cqe)) == -EINTR) {
    }
    if (err != 0) fail("io_uring wait failed: {}", std::strerror(-err));
    const std::pair<uint32_t, int64_t> done{static_cast<uint32_t>(io_uring_cqe_get_data64(cqe)),
                                            cqe->res};
    io_uring_cqe_seen(&ring_, cqe);
    return done;
  }

 private:
  UringQueue(int fd, uint32_t depth) : fd_(fd), depth_(depth) {}
  int fd_;
  uint32_t depth_;
  io_uring ring_{};
  bool ready_ = false;
};
#endif

struct Piece {
  uint64_t file_offset = 0;
  uint64_t len = 0;
  std::byte* mem = nullptr;
  uint64_t done = 0;
};

// Opens `path`, with O_DIRECT when asked and the filesystem accepts it; the flag says which.
std::pair<int, bool> open_file(const std::string& path, bool want_direct) {
  const int base = O_RDONLY | O_CLOEXEC | O_NONBLOCK;  // O_NONBLOCK: a FIFO must not block us
  if (want_direct) {
    const int fd = ::open(path.c_str(), base | O_DIRECT);
    if (fd >= 0) return {fd, true};
    if (errno != EINVAL) fail("cannot open {}: {}", path, std::strerror(errno));
  }
  const int fd = ::open(path.c_str(), base);
  if (fd < 0) fail("cannot open {}: {}", path, std::strerror(errno));
  return {fd, false};
}

// Some filesystems accept O_DIRECT at open and refuse it at read time.
bool direct_read_works(int fd, uint64_t file_size) {
  if (file_size == 0) return true;
  const AlignedBuffer probe = allocate_aligned(kDirectAlign);
  ssize_t n;
  while ((n = pread(fd, probe.get(), kDirectAlign, 0)) < 0 && errno == EINTR) {
  }
  return n >= 0 || errno != EINVAL;
}

}  // namespace

struct DirectReader::State {
  std::string path;
  uint64_t size = 0;
  int fd = -1;
  bool direct = false;
  DirectReadOptions options;
  std::unique_ptr<ReadQueue> queue;
  bool uring = false;
  std::vector<AlignedBuffer> bounce;  // one per queue slot, bounce_bytes each
  uint64_t bounce_bytes = 0;

  ~State() {
    queue.reset();
    if (fd >= 0) ::close(fd);
  }

  // Reads the file range [begin, end) in chunk-sized pieces, queue-depth of them in flight.
  // `place(offset, len, slot)` gives each piece's memory; `finish(offset, bytes, slot)` runs
  // once a piece holds all its bytes (fewer than asked only where the file ends).
  template <typename Place, typename Finish>
  void pump(uint64_t begin, uint64_t end, uint64_t align, Place place, Finish finish) {
    const uint32_t depth = queue->depth();
    std::vector<Piece> pieces(depth);
    std::vector<uint32_t> free_slots(depth);
    std::iota(free_slots.rbegin(), free_slots.rend(), 0u);
    auto issue = [&](uint32_t slot) {
      const Piece& p = pieces[slot];
      queue->submit(slot, p.file_offset + p.done, p.mem + p.done, p.len - p.done);
    };
    // After a failure, reads already in flight still land in memory: wait for all of them
    // before throwing, so no buffer is written after the caller has it back.
    std::string error;
    uint64_t next = begin;
    uint32_t in_flight = 0;
    while ((error.empty() && next < end) || in_flight > 0) {
      while (error.empty() && next < end && !free_slots.empty()) {
        const uint32_t slot = free_slots.back();
        free_slots.pop_back();
        const uint64_t len = std::min<uint64_t>(options.chunk_bytes, end - next);
        pieces[slot] = {next, len, place(next, len, slot), 0};
        issue(slot);
        next += len;
        ++in_flight;
      }
      const auto [slot, result] = queue->wait();
      Piece& p = pieces[slot];
      if (error.empty()) {
        if (result == -EINTR || result == -EAGAIN) {
          issue(slot);
          continue;
        }
        error = account(p, result, align);
        if (error.empty() && !complete(p)) {
          issue(slot);
          continue;
        }
        if (error.empty()) finish(p.file_offset, std::min(p.done, p.len), slot);
      }
      free_slots.push_back(slot);
      --in_flight;
    }
    if (!error.empty()) throw Error(error);
  }

  // A piece is complete when it holds all its bytes or reaches the end of the file.
  bool complete(const Piece& p) const { return p.done >= p.len || p.file_offset + p.done >= size; }

  // Adds one read's result to its piece; a message when the read failed or cannot go on.
  std::string account(Piece& p, int64_t result, uint64_t align) const {
    const uint64_t at = p.file_offset + p.done;
    if (result < 0) {
      return fmt::format("reading {} bytes at offset {} of {} failed: {}", p.len - p.done, at, path,
                         std::strerror(static_cast<int>(-result)));
    }
    const uint64_t before = p.done;
    p.done += static_cast<uint64_t>(result);
    if (complete(p)) return {};
    if (result == 0) {
      return fmt::format("{} ends at offset {}, but had {} bytes when it was opened", path, at,
                         size);
    }
    // O_DIRECT resumes a short read at an aligned offset; re-reading a few bytes is harmless
    // as long as it makes progress.
    p.done = round_down(p.file_offset + p.done, align) - p.file_offset;
    if (p.done <= before) {
      return fmt::format("short read of {} bytes at offset {} of {} cannot resume aligned", result,
                         at, path);
    }
    return {};
  }

  // Every slot's bounce buffer gets `len` bytes before reads start, so nothing can throw while
  // reads are in flight.
  void reserve_bounce(uint64_t len) {
    if (bounce_bytes >= len) return;
    bounce.clear();
    for (uint32_t i = 0; i < queue->depth(); ++i) bounce.push_back(allocate_aligned(len));
    bounce_bytes = len;
  }

  // Reads the aligned pages covering [offset, offset + dst.size()) into the bounce buffers and
  // copies out the part asked for.
  void read_bounced(uint64_t offset, std::span<std::byte> dst) {
    if (dst.empty()) return;
    const uint64_t end = offset + dst.size();
    const uint64_t begin_pages = round_down(offset, kDirectAlign);
    const uint64_t end_pages = round_up(end, kDirectAlign);
    reserve_bounce(std::min<uint64_t>(options.chunk_bytes, end_pages - begin_pages));
    pump(
        begin_pages, end_pages, kDirectAlign,
        [&](uint64_t, uint64_t, uint32_t slot) { return bounce[slot].get(); },
        [&](uint64_t at, uint64_t got, uint32_t slot) {
          const uint64_t from = std::max(at, offset);
          const uint64_t to = std::min(at + got, end);
          if (from < to) {
            std::memcpy(dst.data() + (from - offset), bounce[slot].get() + (from - at), to - from);
          }
        });
  }

  void read_straight(uint64_t offset, std::span<std::byte> dst, uint64_t align) {
    if (dst.empty()) return;
    pump(
        offset, offset + dst.size(), align,
        [&](uint64_t at, uint64_t, uint32_t) { return dst.data() + (at - offset); },
        [](uint64_t, uint64_t, uint32_t) {});
  }

  // Buffered read, then drop the pages it brought in (whole pages, so the edges go too).
  void read_buffered(uint64_t offset, std::span<std::byte> dst) {
    read_straight(offset, dst, 1);
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    const uint64_t begin = round_down(offset, page);
    const uint64_t end = round_up(offset + dst.size(), page);
    const int err = posix_fadvise(fd, static_cast<off_t>(begin), static_cast<off_t>(end - begin),
                                  POSIX_FADV_DONTNEED);
    if (err != 0) {
      fail("posix_fadvise(dontneed) on bytes [{}, {}) of {} failed: {}", begin, end, path,
           std::strerror(err));
    }
  }
};

DirectReader DirectReader::open(const std::string& path, const DirectReadOptions& options) {
  if (options.chunk_bytes < kDirectAlign || options.chunk_bytes % kDirectAlign != 0 ||
      options.chunk_bytes > (1u << 30)) {
    fail("direct read chunk of {} bytes: must be a multiple of {} between {} and {}",
         options.chunk_bytes, kDirectAlign, kDirectAlign, 1u << 30);
  }
  if (options.queue_depth < 1 || options.queue_depth > 256) {
    fail("direct read queue depth {}: must be between 1 and 256", options.queue_depth);
  }
  auto state = std::make_unique<State>();
  state->path = path;
  state->options = options;
  std::tie(state->fd, state->direct) = open_file(path, options.use_o_direct);
  struct stat st;
  if (fstat(state->fd, &st) != 0) fail("cannot stat {}: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    fail("cannot read {}: {}", path,
         S_ISDIR(st.st_mode) ? "it is a directory" : "it is not a regular file");
  }
  state->size = static_cast<uint64_t>(st.st_size);
  if (state->direct && !direct_read_works(state->fd, state->size)) {
    ::close(std::exchange(state->fd, -1));
    std::tie(state->fd, state->direct) = open_file(path, false);
  }
#ifdef EBB_HAVE_URING
  if (state->direct && options.use_io_uring) {
    state->queue = UringQueue::create(state->fd, options.queue_depth);
    state->uring = state->queue != nullptr;
  }
#endif
  if (!state->queue) state->queue = std::make_unique<PreadQueue>(state->fd);
  if (!state->direct) {
    // Read-ahead would bring in pages past each requested range that the range's DONTNEED
    // never drops; every read here is an explicit large chunk, so read-ahead buys nothing.
    (void)posix_fadvise(state->fd, 0, 0, POSIX_FADV_RANDOM);
  }
  return DirectReader(std::move(state));
}

DirectReader::DirectReader(std::unique_ptr<State> state) : state_(std::move(state)) {}
DirectReader::DirectReader(DirectReader&&) noexcept = default;
DirectReader& DirectReader::operator=(DirectReader&&) noexcept = default;
DirectReader::~DirectReader() = default;

void DirectReader::read(uint64_t offset, std::span<std::byte> dst) {
  State& s = *state_;
  const std::optional<uint64_t> end = checked_add(offset, dst.size());
  if (!end || *end > s.size) {
    fail("cannot read {} bytes at offset {} of {}: the file has {} bytes", dst.size(), offset,
         s.path, s.size);
  }
  if (!s.direct) return s.read_buffered(offset, dst);
  // The middle can go straight to dst when file offset and address share their alignment.
  const uint64_t head =
      std::min<uint64_t>(dst.size(), (kDirectAlign - offset % kDirectAlign) % kDirectAlign);
  const uint64_t middle = round_down(dst.size() - head, kDirectAlign);
  if (middle == 0 || !is_aligned(dst.data() + head)) return s.read_bounced(offset, dst);
  s.read_bounced(offset, dst.first(head));
  s.read_straight(offset + head, dst.subspan(head, middle), kDirectAlign);
  s.read_bounced(offset + head + middle, dst.subspan(head + middle));
}

const std::string& DirectReader::path() const {
  return state_->path;
}
uint64_t DirectReader::size() const {
  return state_->size;
}
bool DirectReader::direct() const {
  return state_->direct;
}

const char* DirectReader::method() const {
  if (!state_->direct) return "pread+fadvise";
  return state_->uring ? "io_uring+O_DIRECT" : "pread+O_DIRECT";
}

}  // namespace ebb
