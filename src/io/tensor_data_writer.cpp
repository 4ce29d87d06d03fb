#include "io/tensor_data_writer.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>

#include "backend/cpu/thread_pool.h"
#include "core/checked_math.h"
#include "core/error.h"

namespace ebb {
namespace {

// Each thread holds one chunk buffer; more threads than this buy nothing once the disk is the
// bottleneck and would only add buffers.
constexpr int kMaxFillThreads = 8;

struct FillJob {
  size_t tensor;
  uint64_t offset;  // in the tensor
  uint64_t length;
};

std::vector<FillJob> split_into_jobs(const std::vector<TensorToWrite>& tensors,
                                     const std::vector<TensorPlacement>& placements) {
  std::vector<FillJob> jobs;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t unit = dtype_info(tensors[i].dtype).block_bytes;
    const uint64_t chunk = kFillChunkBytes / unit * unit;
    for (uint64_t offset = 0; offset < placements[i].nbytes; offset += chunk)
      jobs.push_back({i, offset, std::min(chunk, placements[i].nbytes - offset)});
  }
  return jobs;
}

}  // namespace

uint64_t tensor_nbytes(const TensorToWrite& tensor) {
  uint64_t elements = 1;
  for (int64_t dim : tensor.shape) {
    if (dim < 0) fail("tensor {}: negative dimension {}", tensor.name, dim);
    auto product = checked_mul(elements, static_cast<uint64_t>(dim));
    if (!product) fail("tensor {}: the element count overflows 64 bits", tensor.name);
    elements = *product;
  }
  const DTypeInfo& info = dtype_info(tensor.dtype);
  if (elements % info.block_elems != 0)
    fail("tensor {}: {} elements are not a whole number of {} blocks of {}", tensor.name, elements,
         info.name, info.block_elems);
  auto bytes = dtype_bytes(tensor.dtype, elements);
  if (!bytes) fail("tensor {}: the byte size overflows 64 bits", tensor.name);
  return *bytes;
}

void write_tensor_data(AtomicFile& file, const std::vector<TensorToWrite>& tensors,
                       const std::vector<TensorPlacement>& placements, uint64_t data_bytes) {
  if (placements.size() != tensors.size())
    fail("writing {}: {} placements for {} tensors", file.path(), placements.size(),
         tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorPlacement& place = placements[i];
    if (place.offset > data_bytes || place.nbytes > data_bytes - place.offset)
      fail("writing {}: tensor {} ends beyond the {}-byte data section", file.path(),
           tensors[i].name, data_bytes);
    if (place.nbytes > 0 && !tensors[i].fill)
      fail("writing {}: tensor {} has no fill function", file.path(), tensors[i].name);
  }

  const uint64_t base = file.reserve(data_bytes);
  const std::vector<FillJob> jobs = split_into_jobs(tensors, placements);
  if (jobs.empty()) return;
  uint64_t largest = 0;
  for (const FillJob& job : jobs) largest = std::max(largest, job.length);

  const int threads = static_cast<int>(
      std::min<size_t>(std::min(ThreadPool::physical_cores(), kMaxFillThreads), jobs.size()));
  ThreadPool pool(threads);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  // Threads take jobs in file order, so the file grows front to back in large writes.
  pool.parallel_chunks(pool.size(), [&](int, int64_t, int64_t) {
    try {
      auto buffer = std::make_unique<std::byte[]>(largest);
      for (size_t j = next++; j < jobs.size() && !failed; j = next++) {
        const FillJob& job = jobs[j];
        std::span<std::byte> chunk(buffer.get(), job.length);
        tensors[job.tensor].fill(chunk, job.offset);
        file.write_at(base + placements[job.tensor].offset + job.offset, chunk);
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  });
  if (error) std::rethrow_exception(error);
}

}  // namespace ebb
