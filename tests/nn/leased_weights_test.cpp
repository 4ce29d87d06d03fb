#include "nn/leased_weights.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/safetensors_writer.h"
#include "support/small_tensors.h"
#include "support/temp_dir.h"

namespace ebb {
namespace {

TEST(LeasedWeights, TensorsAreZeroCopyViewsOfTheLeasedBlock) {
  test::TempDir dir;
  write_safetensors(dir / "m.safetensors",
                    {test::f32_tensor("model.diffusion_model.out.2.weight", {2, 3}, 7),
                     test::f32_tensor("model.diffusion_model.out.0.weight", {3})},
                    {}, false);
  ModelSource source = ModelSource::open({dir / "m.safetensors"});
  Ledger ledger;
  WeightStore store(source, ledger, {});
  LeasedWeights w(store, "diffusion_model", "out.");
  EXPECT_EQ(store.active_leases(), 1);
  Tensor weight = w.get("2.weight");
  EXPECT_EQ(weight.shape(), (Shape{2, 3}));
  EXPECT_EQ(weight.dtype(), DType::F32);
  const IndexedTensor* t = source.find("diffusion_model", "out.2.weight");
  EXPECT_EQ(static_cast<const void*>(weight.data<float>()),
            static_cast<const void*>(source.bytes(*t).data()));
  EXPECT_EQ(weight.data<float>()[5], 12.0f);
  EXPECT_FALSE(w.optional("2.bias").defined());
  EXPECT_THROW(w.get("2.bias"), Error);
}

}  // namespace
}  // namespace ebb
