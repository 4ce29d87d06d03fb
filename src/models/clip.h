#pragma once
// OpenAI's CLIP ViT-L/14 text encoder: SD 1.x's, and SDXL's first. Weights as transformers
// names them within the component ("text_model.encoder.layers.N.self_attn.q_proj.weight"),
// which is how single-file checkpoints store them under cond_stage_model.transformer. or
// conditioner.embedders.0.transformer.; MLP activation quick_gelu.
#include <cstdint>
#include <string>

#include "nn/clip_text_transformer.h"
#include "weights/weight_store.h"

namespace ebb {

ClipTextLayout openai_clip_text_layout();

// heads = 0: from the width (ViT-L/14: 768 wide, 12 heads of 64).
ClipTextTransformer make_clip_text_encoder(WeightStore& store, std::string component = "clip_l",
                                           int64_t heads = 0);

}  // namespace ebb
