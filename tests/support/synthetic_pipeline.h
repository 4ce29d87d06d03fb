#pragma once
// A synthetic three-stage model for memory-plan tests: a text encoder, a diffusion model and a
// VAE of distinct sizes (f32 blocks whose elements encode their position), and a pipeline that
// runs the stages in txt2img's order, leasing one block at a time and checking every value it
// reads, so a plan that serves wrong bytes fails.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "io/model_source.h"
#include "support/small_tensors.h"
#include "weights/weight_store.h"

namespace ebb::test {

struct SyntheticStage {
  Stage stage;
  const char* component;
  const char* file_prefix;   // single-file checkpoint prefix
  const char* block_format;  // block prefix within the component, {} = block index
  int blocks;
  int64_t block_elements;  // f32 elements per block (one tensor)
  uint64_t bytes() const { return static_cast<uint64_t>(blocks * block_elements) * 4; }
  uint64_t block_bytes() const { return static_cast<uint64_t>(block_elements) * 4; }
};

// 192 KiB of encoder, 1.5 MiB of diffusion model in 6 blocks, 512 KiB of VAE.
inline const std::vector<SyntheticStage>& synthetic_stages() {
  static const std::vector<SyntheticStage> stages{
      {Stage::TextEncoders, "clip_l", "cond_stage_model.transformer.",
       "text_model.encoder.layers.{}.", 3, 16 << 10},
      {Stage::Diffusion, "diffusion_model", "model.diffusion_model.", "input_blocks.{}.", 6,
       64 << 10},
      {Stage::Vae, "vae", "first_stage_model.", "decoder.up.{}.", 4, 32 << 10},
  };
  return stages;
}

inline float synthetic_base(int stage, int block) {
  return static_cast<float>(stage * 16 + block) * 65536.0f;  // exact in f32
}

inline void write_synthetic_model(const std::string& path) {
  std::vector<TensorToWrite> tensors;
  const auto& stages = synthetic_stages();
  for (size_t s = 0; s < stages.size(); ++s)
    for (int b = 0; b < stages[s].blocks; ++b)
      tensors.push_back(
          f32_tensor(std::string(stages[s].file_prefix) +
                         fmt::format(fmt::runtime(stages[s].block_format), b) + "weight",
                     {stages[s].block_elements}, synthetic_base(static_cast<int>(s), b)));
  write_safetensors(path, tensors, {}, false);
}

inline uint64_t synthetic_total_bytes() {
  uint64_t total = 0;
  for (const SyntheticStage& s : synthetic_stages()) total += s.bytes();
  return total;
}

// Runs one stage: every block leased in turn, every value checked. `after_block` sees the
// store after each lease ended.
template <typename AfterBlock>
void run_synthetic_stage(WeightStore& store, size_t index, const AfterBlock& after_block) {
  const SyntheticStage& s = synthetic_stages()[index];
  store.begin_stage(s.stage);
  for (int b = 0; b < s.blocks; ++b) {
    {
      const std::string prefix = fmt::format(fmt::runtime(s.block_format), b);
      const WeightLease lease = store.lease(s.component, prefix);
      const Weight& w = lease.get(prefix + "weight");
      ASSERT_EQ(w.bytes.size(), s.block_bytes());
      const float base = synthetic_base(static_cast<int>(index), b);
      for (int64_t i = 0; i < s.block_elements; i += 997) {
        float v;
        std::memcpy(&v, w.bytes.data() + i * 4, 4);
        ASSERT_EQ(v, base + static_cast<float>(i)) << s.component << " block " << b;
      }
    }
    after_block();
  }
  store.end_stage(s.stage);
}

inline void run_synthetic_pipeline(WeightStore& store) {
  for (size_t i = 0; i < synthetic_stages().size(); ++i) run_synthetic_stage(store, i, [] {});
}

}  // namespace ebb::test
