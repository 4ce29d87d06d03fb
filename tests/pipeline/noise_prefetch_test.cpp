// Noise drawn ahead on a worker thread is the generator's own stream: the same values in the same
// order as drawing in turn, whatever sizes are asked for, and a draw never asked for leaves the
// generator where drawing in turn would.
#include <gtest/gtest.h>

#include <vector>

#include "pipeline/noise_prefetch.h"
#include "pipeline/torch_rng.h"

namespace ebb {
namespace {

std::vector<float> draw(TorchCpuGenerator& g, size_t n) {
  std::vector<float> v(n);
  g.randn(v);
  return v;
}

std::vector<float> draw(NoisePrefetch& p, size_t n) {
  std::vector<float> v(n);
  p.randn(v);
  return v;
}

TEST(NoisePrefetch, GivesTheSequentialStream) {
  constexpr size_t kLatent = 4 * 8 * 8;
  TorchCpuGenerator in_turn(42), ahead(42);
  NoisePrefetch prefetch(ahead, kLatent);
  for (int step = 0; step < 5; ++step)
    ASSERT_EQ(draw(prefetch, kLatent), draw(in_turn, kLatent)) << "step " << step;
}

// Sizes other than the prefetched one (below 16 PyTorch keeps half a Box–Muller pair on the
// generator) come from the generator itself, in order.
TEST(NoisePrefetch, OtherSizesKeepTheOrder) {
  constexpr size_t kLatent = 64;
  TorchCpuGenerator in_turn(7), ahead(7);
  NoisePrefetch prefetch(ahead, kLatent);
  for (size_t n : {kLatent, size_t{3}, kLatent, size_t{100}, size_t{1}, kLatent, kLatent})
    ASSERT_EQ(draw(prefetch, n), draw(in_turn, n)) << n << " values";
}

TEST(NoisePrefetch, ADrawNeverAskedForLeavesTheGeneratorAlone) {
  constexpr size_t kLatent = 48;
  TorchCpuGenerator in_turn(3), ahead(3);
  {
    NoisePrefetch prefetch(ahead, kLatent);
    ASSERT_EQ(draw(prefetch, kLatent), draw(in_turn, kLatent));
  }
  EXPECT_EQ(draw(ahead, kLatent), draw(in_turn, kLatent));
  { NoisePrefetch unused(ahead, kLatent); }
  EXPECT_EQ(draw(ahead, 5), draw(in_turn, 5));
}

}  // namespace
}  // namespace ebb
