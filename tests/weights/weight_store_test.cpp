#include "weights/weight_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "io/safetensors_writer.h"
#include "support/temp_dir.h"
#include "tensor/float_convert.h"

namespace ebb {
namespace {

using ::testing::HasSubstr;

// f16 tensor whose element i holds i/8 (exact in f16 for the sizes used here).
TensorToWrite f16_tensor(std::string name, std::vector<int64_t> shape) {
  return {std::move(name), DType::F16, std::move(shape),
          [](std::span<std::byte> dst, uint64_t offset) {
            for (size_t i = 0; i < dst.size() / 2; ++i) {
              uint16_t h = f32_to_f16(static_cast<float>(offset / 2 + i) / 8);
              std::memcpy(dst.data() + 2 * i, &h, 2);
            }
          }};
}

class WeightStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir / "m.safetensors";
    write_safetensors(path,
                      {f16_tensor("model.diffusion_model.input_blocks.0.0.weight", {4, 8}),
                       f16_tensor("model.diffusion_model.input_blocks.0.0.bias", {4}),
                       f16_tensor("model.diffusion_model.out.2.weight", {2, 4}),
                       f16_tensor("first_stage_model.decoder.conv_in.weight", {3, 5})},
                      {}, false);
    source = std::make_unique<ModelSource>(ModelSource::open({path}));
  }
  test::TempDir dir;
  std::string path;
  std::unique_ptr<ModelSource> source;
  Ledger ledger;
};

TEST_F(WeightStoreTest, AsStoredWeightsAreZeroCopyFromTheMapping) {
  WeightStore store(*source, ledger, {});
  WeightLease lease = store.lease("diffusion_model", "input_blocks.0.");
  const Weight& w = lease.get("input_blocks.0.0.weight");
  EXPECT_TRUE(w.zero_copy);
  EXPECT_EQ(w.dtype, DType::F16);
  const IndexedTensor* t = source->find("diffusion_model", "input_blocks.0.0.weight");
  EXPECT_EQ(w.bytes.data(), source->bytes(*t).data());
  EXPECT_EQ(ledger.peak("cpu", MemoryTag::Weights), 0u);  // no weight buffer at all
}

TEST_F(WeightStoreTest, F32ConsumersGetConvertedOwnedCopiesAccountedInTheLedger) {
  {
    WeightStore store(*source, ledger, {WeightFormat::F32, {{"vae", WeightFormat::AsStored}}});
    WeightLease lease = store.lease("diffusion_model", "input_blocks.0.");
    const Weight& w = lease.get("input_blocks.0.0.weight");
    EXPECT_FALSE(w.zero_copy);
    ASSERT_EQ(w.dtype, DType::F32);
    ASSERT_EQ(w.bytes.size(), 32u * 4);
    const float* f = reinterpret_cast<const float*>(w.bytes.data());
    for (int i = 0; i < 32; ++i) EXPECT_EQ(f[i], i / 8.0f);
    // 32 + 4 + 8 f32 values of the diffusion model; the VAE stays zero-copy.
    EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), (32u + 4 + 8) * 4);
    WeightLease vae = store.lease("vae", "decoder.");
    EXPECT_TRUE(vae.get("decoder.conv_in.weight").zero_copy);
  }
  EXPECT_EQ(ledger.current("cpu", MemoryTag::Weights), 0u);
  EXPECT_EQ(ledger.peak("cpu", MemoryTag::Weights), (32u + 4 + 8) * 4);
}

TEST_F(WeightStoreTest, LeasesAreCountedAndScoped) {
  WeightStore store(*source, ledger, {});
  {
    WeightLease a = store.lease("diffusion_model", "input_blocks.0.");
    WeightLease b = store.lease("diffusion_model", "out.");
    EXPECT_EQ(store.active_leases(), 2);
    WeightLease moved = std::move(a);
    EXPECT_EQ(store.active_leases(), 2);
    EXPECT_EQ(moved.find("input_blocks.0.0.missing"), nullptr);
    EXPECT_THROW(moved.get("out.2.weight"), Error);  // outside the leased block
  }
  EXPECT_EQ(store.active_leases(), 0);
}

TEST_F(WeightStoreTest, MissingComponentsAndBlocksAreNamed) {
  WeightStore store(*source, ledger, {});
  try {
    store.lease("clip_l", "text_model.");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("clip_l"));
  }
  try {
    store.lease("diffusion_model", "middle_block.");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("middle_block."));
  }
}

}  // namespace
}  // namespace ebb
