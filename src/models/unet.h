#pragma once
// The LDM/SGM UNet of Stable Diffusion 1.x, 2.x and XL, read from original single-file names
// (time_embed, label_emb, input_blocks, middle_block, output_blocks, out) in component
// "diffusion_model". The checkpoint cannot tell the attention head count, so the model takes
// a config: UNetConfig::for_architecture for the released models, or one built by the caller
// (the tests' tiny models). Weight shapes are checked against it as blocks are leased.
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "io/architecture.h"
#include "weights/weight_store.h"

namespace ebb {

struct UNetConfig {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  int64_t model_channels = 320;
  std::vector<int64_t> channel_mult;  // per level; channels(level) = model_channels * mult
  int num_res_blocks = 2;
  std::vector<int> transformer_depth;  // per level; 0: no attention at that level
  int middle_transformer_depth = 1;
  std::vector<int64_t> heads;  // per level; the middle block uses the last level's
  int64_t context_dim = 768;
  // SDXL's added condition: pooled text embedding (adm_in_channels - 6 * time_id_dim wide)
  // and six size/crop numbers, each embedded sinusoidally to time_id_dim. 0: none.
  int64_t adm_in_channels = 0;
  int64_t time_id_dim = 0;

  int levels() const { return static_cast<int>(channel_mult.size()); }
  int64_t channels(int level) const { return model_channels * channel_mult[level]; }
  int64_t time_embed_dim() const { return model_channels * 4; }

  // SD 1.5 (v1-inference.yaml), SD 2.1 768-v (v2-inference-v.yaml), SDXL base
  // (sd_xl_base.yaml). Fails for other architectures.
  static UNetConfig for_architecture(Architecture arch);
};

struct UNetCondition {
  Tensor context;      // [B, tokens, context_dim]
  Tensor text_embeds;  // SDXL: [B, pooled width]; otherwise undefined
  Tensor time_ids;     // SDXL: [B, 6] original h, w, crop top, left, target h, w
};

// x [B, in_channels, h, w] (h, w divisible by 2^(levels-1)), every sample at `timestep`
// -> the model output (noise or v) [B, out_channels, h, w].
Tensor unet_forward(Backend& backend, WeightStore& store, const UNetConfig& config, const Tensor& x,
                    float timestep, const UNetCondition& condition);

}  // namespace ebb
