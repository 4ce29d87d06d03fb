// CudaTransfer on the GPU: an upload waits for the compute fence it is given and no more (it
// lands while later compute still runs), compute ordered after an upload reads the uploaded
// bytes from a pinned host buffer, and pieces from pinned or pageable memory land whole.
// Skips without a GPU.
#include <gtest/gtest.h>

#ifndef EBB_HAVE_CUDA

TEST(CudaTransfer, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA";
}

#else

#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_transfer.h"
#include "support/cuda_test_support.h"

namespace ebb {
namespace {

class CudaTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!test::device_present(why)) GTEST_SKIP() << why;
  }
  // Enqueues tens of milliseconds of products on the compute stream.
  static void busy(CudaBackend& gpu, int products) {
    const Tensor x = gpu.empty({4096, 4096});
    const Tensor w = gpu.empty({4096, 4096});
    for (int i = 0; i < products; ++i) (void)gpu.linear(x, w, Tensor{});
  }
};

TEST_F(CudaTransferTest, AnUploadWaitsForItsFenceOnly) {
  CudaBackend gpu;
  CudaTransfer transfer(gpu);
  const auto source = transfer.host_buffer(4096);
  std::memset(source->data(), 7, 4096);
  const auto early = transfer.allocate(4096, "early");
  const auto late = transfer.allocate(4096, "late");
  const std::shared_ptr<TransferEvent> before = transfer.compute_fence();
  busy(gpu, 200);
  const std::shared_ptr<TransferEvent> after = transfer.compute_fence();
  const auto landed_early =
      transfer.upload({{{source->data(), 4096}, early->data(), source}}, before);
  landed_early->wait();  // while the products still run
  EXPECT_FALSE(after->done());
  const auto landed_late = transfer.upload({{{source->data(), 4096}, late->data(), source}}, after);
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(landed_late->done());  // the products it waits for still run
  gpu.synchronize();
  landed_late->wait();
  EXPECT_TRUE(after->done());
}

TEST_F(CudaTransferTest, ComputeOrderedAfterAnUploadReadsItsBytes) {
  CudaBackend gpu(CudaBackendOptions{.activation_dtype = DType::F32});
  CudaTransfer transfer(gpu);
  constexpr int64_t n = 1 << 20;
  const auto source = transfer.host_buffer(n * sizeof(float));
  std::vector<float> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = static_cast<float>(i % 1000) * 0.5f;
  std::memcpy(source->data(), values.data(), n * sizeof(float));
  const auto weights = transfer.allocate(n * sizeof(float), "weights");
  const std::shared_ptr<TransferEvent> fence = transfer.compute_fence();
  busy(gpu, 20);  // the upload overlaps it; the sum below waits for the upload
  const auto landed = transfer.upload(
      {{{source->data(), static_cast<size_t>(n * sizeof(float))}, weights->data(), source}}, fence);
  transfer.compute_after(*landed);
  const Tensor w(weights, 0, DType::F32, {n});
  const Tensor doubled = gpu.add(w, w);
  std::vector<float> out(n);
  gpu.read(doubled, out.data(), n * sizeof(float));
  for (int64_t i = 0; i < n; i += 4099) ASSERT_EQ(out[i], 2 * values[i]) << i;
}

// Tensors back to back in a pinned buffer and on the device go as one copy; one out of line
// goes on its own. Either way every byte lands where its piece says.
TEST_F(CudaTransferTest, AdjacentAndScatteredPiecesLandWhereTheySay) {
  CudaBackend gpu;
  CudaTransfer transfer(gpu);
  constexpr size_t n = 3 * 4096;
  const auto source = transfer.host_buffer(n);
  for (size_t i = 0; i < n; ++i) source->data()[i] = static_cast<std::byte>(i * 13 % 251);
  const auto device = transfer.allocate(n + 4096, "block");
  const auto piece = [&](size_t at, size_t to) {
    return UploadPiece{{source->data() + at, 4096}, device->data() + to, source};
  };
  transfer.upload({piece(0, 0), piece(4096, 4096), piece(8192, 12288)}, nullptr)->wait();
  std::vector<std::byte> out(n + 4096);
  gpu.read(Tensor(device, 0, DType::U8, {static_cast<int64_t>(out.size())}), out.data(),
           out.size());
  EXPECT_EQ(std::memcmp(out.data(), source->data(), 8192), 0);
  EXPECT_EQ(std::memcmp(out.data() + 12288, source->data() + 8192, 4096), 0);
}

// Pageable sources, as a mapped file's pages are: a large piece starting and ending mid-page
// (its whole pages registered and copied by DMA, its partial pages staged), a small one (staged
// only), and the same large piece again while its first upload may still run. Every byte lands.
TEST_F(CudaTransferTest, PageableSourcesLandWhole) {
  CudaBackend gpu;
  CudaTransfer transfer(gpu);
  constexpr size_t large = (size_t(9) << 20) + 1234, small = 3000, offset = 777;
  std::vector<std::byte> host(offset + large + small);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<std::byte>(i * 31 % 253);
  const auto device = transfer.allocate(2 * large + small, "blocks");
  const std::span<const std::byte> first(host.data() + offset, large);
  const std::span<const std::byte> second(host.data() + offset + large, small);
  const auto landed =
      transfer.upload({{first, device->data()}, {second, device->data() + large}}, nullptr);
  transfer.upload({{first, device->data() + large + small}}, nullptr)->wait();
  EXPECT_TRUE(landed->done());
  // Waited for, an upload holds no registration: the pages can be registered (or freed) again.
  landed->wait();
  void* page =
      reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(first.data()) + 4095) / 4096 * 4096);
  ASSERT_EQ(cudaHostRegister(page, 4096, cudaHostRegisterReadOnly), cudaSuccess);
  EXPECT_EQ(cudaHostUnregister(page), cudaSuccess);
  std::vector<std::byte> out(2 * large + small);
  gpu.read(Tensor(device, 0, DType::U8, {static_cast<int64_t>(out.size())}), out.data(),
           out.size());
  EXPECT_EQ(std::memcmp(out.data(), host.data() + offset, large + small), 0);
  EXPECT_EQ(std::memcmp(out.data() + large + small, host.data() + offset, large), 0);
}

}  // namespace
}  // namespace ebb

#endif
