#pragma once
// OpenCLIP text encoders: ViT-H/14 (SD 2.x) and ViT-bigG/14 (SDXL's second). Weights as
// OpenCLIP names them within the component ("transformer.resblocks.N.attn.in_proj_weight",
// token_embedding, positional_embedding, ln_final, text_projection), as single-file
// checkpoints store them under cond_stage_model.model. or conditioner.embedders.1.model.;
// MLP activation: exact GELU.
#include <cstdint>
#include <span>
#include <string>

#include "backend/backend.h"
#include "nn/clip_text_transformer.h"
#include "weights/weight_store.h"

namespace ebb {

ClipTextLayout open_clip_text_layout();

// heads = 0: from the width (ViT-H: 1024 wide, 16 heads; bigG: 1280 wide, 20 heads).
ClipTextTransformer make_open_clip_text_encoder(WeightStore& store, std::string component,
                                                int64_t heads = 0);

// The pooled text embedding (SDXL's text_embeds): the final-normed last layer output
// `last_normed` [1, L, width] at the first <|endoftext|> of `ids` (their largest id), times
// text_projection (stored [width, projection]: x @ P) -> [1, projection].
Tensor open_clip_pooled(Backend& backend, const ClipTextTransformer& encoder,
                        const Tensor& last_normed, std::span<const int32_t> ids);

}  // namespace ebb
