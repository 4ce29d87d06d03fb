#include "weights/block_reader.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace ebb {
namespace {

constexpr uint64_t kAlign = 4096;
// Reading a gap this small costs less than a second request.
constexpr uint64_t kMaxGap = uint64_t(64) << 10;

}  // namespace

ReadLayout layout_block_read(const std::vector<ReadRange>& pieces, bool packed) {
  const uint64_t max_gap = packed ? 0 : kMaxGap;
  std::vector<size_t> order(pieces.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(pieces[a].file, pieces[a].offset) < std::tie(pieces[b].file, pieces[b].offset);
  });
  ReadLayout layout;
  layout.piece_at.resize(pieces.size());
  for (size_t i : order) {
    const ReadRange& p = pieces[i];
    ReadRange* last = layout.ranges.empty() ? nullptr : &layout.ranges.back();
    const bool joins =
        last && last->file == p.file && p.offset <= last->offset + last->bytes + max_gap;
    if (!joins) {
      const uint64_t start =
          packed ? layout.bytes : (layout.bytes + kAlign - 1) / kAlign * kAlign + p.offset % kAlign;
      layout.ranges.push_back({p.file, p.offset, p.bytes, start});
      last = &layout.ranges.back();
    }
    last->bytes = std::max(last->bytes, p.offset + p.bytes - last->offset);
    layout.piece_at[i] = last->at + (p.offset - last->offset);
    layout.bytes = std::max(layout.bytes, last->at + last->bytes);
  }
  return layout;
}

BlockReader::BlockReader(std::vector<std::string> paths, DirectReadOptions options,
                         std::function<Buffer(uint64_t)> allocate)
    : paths_(std::move(paths)),
      options_(options),
      allocate_(std::move(allocate)),
      readers_(paths_.size()),
      thread_([this] { run(); }) {}

BlockReader::~BlockReader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_future<BlockReader::Buffer> BlockReader::read(const ReadLayout& layout, Buffer into) {
  if (into && into->bytes() < layout.bytes)
    fail("a block read of {} bytes was given a buffer of {}", layout.bytes, into->bytes());
  Job job{layout, std::move(into), {}};
  std::shared_future<Buffer> result = job.done.get_future().share();
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return result;
}

void BlockReader::run() {
  for (;;) {
    {
      Job job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        busy_ = true;
      }
      try {
        Buffer buffer = job.into ? std::move(job.into) : allocate_(job.layout.bytes);
        read_into(job.layout, buffer->data());
        job.done.set_value(std::move(buffer));
      } catch (...) {
        job.done.set_exception(std::current_exception());
      }
    }  // the job's hold on its buffer ends here, after the caller may have seen it read
    {
      std::lock_guard lock(mutex_);
      busy_ = false;
    }
    idle_.notify_all();
  }
}

void BlockReader::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return jobs_.empty() && !busy_; });
}

void BlockReader::read_into(const ReadLayout& layout, std::byte* buffer) {
  for (const ReadRange& r : layout.ranges) {
    std::optional<DirectReader>& reader = readers_.at(r.file);
    if (!reader) reader.emplace(DirectReader::open(paths_[r.file], options_));
    reader->read(r.offset, {buffer + r.at, r.bytes});
  }
}

}  // namespace ebb
