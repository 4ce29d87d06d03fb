#pragma once
// What the GPU benchmarks share: status checks, an owning device buffer, and median timing
// of a call with CUDA events. Include only where EBB_HAVE_CUDA is defined.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ebb::bench {

inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(err));
}

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    cuda_check(cudaMalloc(&ptr_, bytes), "cudaMalloc");
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  void fill(int byte) const { cuda_check(cudaMemset(ptr_, byte, bytes_), "cudaMemset"); }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

// Milliseconds for `calls` back-to-back calls enqueued on `stream`.
inline float elapsed_ms(const std::function<void()>& call, cudaStream_t stream, int calls) {
  cudaEvent_t start, stop;
  cuda_check(cudaEventCreate(&start), "cudaEventCreate");
  cuda_check(cudaEventCreate(&stop), "cudaEventCreate");
  cuda_check(cudaEventRecord(start, stream), "cudaEventRecord");
  for (int i = 0; i < calls; ++i) call();
  cuda_check(cudaEventRecord(stop, stream), "cudaEventRecord");
  cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms;
}

// Median milliseconds per call over 7 rounds of about `round_ms` each, after 3 warm-up calls.
inline double median_ms(const std::function<void()>& call, cudaStream_t stream, float round_ms) {
  const float warm = elapsed_ms(call, stream, 3) / 3;
  const int calls = std::clamp(static_cast<int>(round_ms / std::max(warm, 1e-3f)), 3, 5000);
  std::vector<double> rounds;
  for (int r = 0; r < 7; ++r) rounds.push_back(elapsed_ms(call, stream, calls) / calls);
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

}  // namespace ebb::bench
