// Backends by device name: the CPU always, CUDA devices only when built and present (the
// message says why not), unknown names refused; one backend per device in a BackendSet.
#include "backend/backend_factory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(BackendFactory, CpuComputesInF32) {
  const std::unique_ptr<Backend> cpu = make_backend("cpu", {});
  EXPECT_EQ(cpu->device(), Device::cpu());
  EXPECT_EQ(cpu->activation_dtype(), DType::F32);
}

TEST(BackendFactory, UnknownDevicesAreRefused) {
  for (const char* name : {"tpu0", "cuda", "cudax", "cuda-1", "CPU"})
    EXPECT_THAT([&] { make_backend(name, {}); },
                ThrowsMessage<Error>(HasSubstr(std::string("unknown device '") + name)))
        << name;
}

TEST(BackendFactory, CudaDeviceIsMadeOrExplained) {
  if (cuda_device_count() > 0) {
    BackendOptions options;
    options.gpu_activations = DType::BF16;
    const std::unique_ptr<Backend> gpu = make_backend("cuda0", options);
    EXPECT_EQ(gpu->device(), Device::cuda(0));
    EXPECT_EQ(gpu->activation_dtype(), DType::BF16);
  } else {
    // No driver, no GPU, or a build without CUDA: an error naming the device, never a crash.
    EXPECT_THAT([] { make_backend("cuda0", {}); }, ThrowsMessage<Error>(HasSubstr("cuda0")));
  }
  EXPECT_THAT([] { make_backend("cuda99", {}); }, ThrowsMessage<Error>(HasSubstr("cuda99")));
}

TEST(BackendFactory, OneBackendPerDevice) {
  BackendSet set(BackendOptions{.cpu_threads = 1});
  Backend& a = set.get("cpu");
  EXPECT_EQ(&a, &set.get("cpu"));
  EXPECT_THROW(set.get("npu0"), Error);
}

}  // namespace
}  // namespace ebb
