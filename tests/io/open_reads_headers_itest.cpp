// Opening and indexing a model must read headers only: the tensor data of a 1 GB checkpoint
// stays out of the page cache until a plan asks for it.
#include <gtest/gtest.h>

#include <algorithm>

#include "io/model_source.h"
#include "io/page_cache.h"
#include "io/safetensors_writer.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

TEST(OpenReadsHeaders, OneGigabyteCheckpointStaysCold) {
  test::TempDir dir;
  const std::string path = dir / "big.safetensors";
  std::vector<TensorToWrite> tensors;
  for (int i = 0; i < 1024; ++i)
    tensors.push_back({"model.diffusion_model.blocks." + std::to_string(i) + ".weight",
                       DType::F16,
                       {512, 1024},
                       [i](std::span<std::byte> dst, uint64_t) {
                         std::fill(dst.begin(), dst.end(), std::byte(i & 0xff));
                       }});
  write_safetensors(path, tensors, {}, false);
  evict_file(path);

  ModelSource src = ModelSource::open({path});
  ASSERT_EQ(src.tensors().size(), 1024u);
  const MappedFile& file = src.files()[0].mapping;
  uint64_t data_begin = file.size();
  for (const IndexedTensor& t : src.tensors()) data_begin = std::min(data_begin, t.info.offset);
  ASSERT_GE(file.size() - data_begin, 1024 * kMiB);
  const uint64_t resident = resident_bytes(file, data_begin, file.size() - data_begin);
  EXPECT_LT(resident, kMiB) << "opening the model made " << resident
                            << " bytes of tensor data resident";

  // The measurement itself must be able to see residency, or the assertion above proves
  // nothing: touching one tensor makes its pages resident.
  const IndexedTensor& probe = src.tensors()[500];
  uint64_t sum = 0;
  for (std::byte b : src.bytes(probe)) sum += static_cast<uint64_t>(b);
  EXPECT_EQ(sum, probe.info.nbytes * (500 & 0xff));  // every byte of tensor i is i & 0xff
  EXPECT_GE(resident_bytes(file, probe.info.offset, probe.info.nbytes), probe.info.nbytes);
}

}  // namespace
}  // namespace ebb
