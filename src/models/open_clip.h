#pragma once
// OpenCLIP text encoders: ViT-H/14 (SD 2.x) and ViT-bigG/14 (SDXL's second); MLP activation:
// exact GELU. Two weight layouts, one computation:
//  - OpenCLIP's names within the component ("transformer.resblocks.N.attn.in_proj_weight",
//    token_embedding, positional_embedding, ln_final, text_projection [width, projection]), as
//    single-file checkpoints store them under cond_stage_model.model. or
//    conditioner.embedders.1.model.;
//  - transformers' CLIPTextModel(WithProjection), as diffusers folders store them: q/k/v as
//    three linears (the encoder layer takes either), text_projection.weight [projection, width]
//    (a Linear: the transpose), and for SD 2.x without the last layer (SD 2.x conditions on the
//    penultimate one, so diffusers' text_encoder ends there).
#include <cstdint>
#include <span>
#include <string>

#include "backend/backend.h"
#include "io/model_source.h"
#include "nn/clip_text_transformer.h"
#include "weights/weight_store.h"

namespace ebb {

ClipTextLayout open_clip_text_layout();
// The layout `component` of `source` is stored in (its naming picks).
ClipTextLayout open_clip_text_layout(const ModelSource& source, const std::string& component);

// The pooled embedding's width: text_projection's columns (OpenCLIP) or text_projection.weight's
// rows (transformers). Missing: an ebb::Error naming the component.
int64_t open_clip_projection_width(const ModelSource& source, const std::string& component);

// heads = 0: from the width (ViT-H: 1024 wide, 16 heads; bigG: 1280 wide, 20 heads).
ClipTextTransformer make_open_clip_text_encoder(WeightStore& store, std::string component,
                                                int64_t heads = 0);

// The pooled text embedding (SDXL's text_embeds): the final-normed last layer output
// `last_normed` [1, L, width] at the first <|endoftext|> of `ids` (their largest id), times
// text_projection (x @ P, whichever way it is stored) -> [1, projection].
Tensor open_clip_pooled(Backend& backend, const ClipTextTransformer& encoder,
                        const Tensor& last_normed, std::span<const int32_t> ids);

}  // namespace ebb
