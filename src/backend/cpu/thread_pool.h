#pragma once
// A fixed set of worker threads with static, deterministic work splitting: for a given thread
// count, the same range is always cut into the same chunks, so reductions inside a chunk
// happen in the same order on every run (results are bit-identical run to run).
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ebb {

class ThreadPool {
 public:
  // threads <= 0: the number of physical cores.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on contiguous chunks covering [0, n), at most one chunk per thread,
  // the calling thread included, and returns when all are done. Chunk i always covers the
  // same range for the same n and pool size. Not reentrant: fn must not call parallel_for.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  // Like parallel_for, but also tells fn which chunk (0..size()-1) it runs, so callers can
  // give each chunk its own scratch.
  void parallel_chunks(int64_t n, const std::function<void(int chunk, int64_t, int64_t)>& fn);

  static int physical_cores();

 private:
  void worker_loop(int index);
  void run_chunk(int chunk);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int, int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
};

}  // namespace ebb
