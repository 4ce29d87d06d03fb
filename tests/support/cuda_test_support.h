#pragma once
// What every GPU test needs: CUDA status checks, whether a device is there (and why not), an
// owning device buffer, and a fixture with a stream. Include only where EBB_HAVE_CUDA is
// defined.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace ebb::test {

inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(err));
}

inline bool device_present(std::string& why_not) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    why_not = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    return false;
  }
  if (count == 0) {
    why_not = "no CUDA device";
    return false;
  }
  return true;
}

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) { cuda_check(cudaMalloc(&ptr_, bytes), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T = std::byte>
  T* get() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

// Skips without a device; owns a stream for the test.
class CudaStreamTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string why_not;
    if (!device_present(why_not)) GTEST_SKIP() << why_not;
    cuda_check(cudaStreamCreate(&stream_), "cudaStreamCreate");
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  void sync() { cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

  cudaStream_t stream_ = nullptr;
};

}  // namespace ebb::test
