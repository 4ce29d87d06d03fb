#pragma once
// A prompt into the UNet's text condition, per architecture:
//   SD 1.x  context = CLIP-L hidden_states[-clip_skip] + final layer norm (clip_skip 1: the
//           last hidden state)
//   SD 2.x  context = OpenCLIP-H hidden_states[-clip_skip] + final layer norm (default 2)
//   SDXL    context = concat on channels of CLIP-L and OpenCLIP-bigG hidden_states[-clip_skip]
//           without final norm (default 2); pooled = bigG's text_embeds (open_clip.h) of the
//           first window
// Prompts use AUTOMATIC1111's emphasis syntax and windows (prompt_weights.h, clip_windows.h):
// each 77-token window is encoded on its own and the windows concatenate along the tokens.
// Emphasis as A1111 applies it: per window and per encoder, every token's hidden state is
// multiplied by its weight, then the window's output is rescaled so that its mean over all
// tokens and channels is what it was before weighting. (stable-diffusion.cpp takes that mean
// over SDXL's concatenated context instead; the two agree for SD 1.x and 2.x.)
#include <cstdint>
#include <optional>
#include <string_view>

#include "backend/backend.h"
#include "io/architecture.h"
#include "models/open_clip.h"
#include "nn/clip_text_transformer.h"
#include "pipeline/clip_tokenizer.h"
#include "pipeline/clip_windows.h"
#include "weights/weight_store.h"

namespace ebb {

struct TextConditioningOptions {
  int clip_skip = 0;  // 0: the architecture's default (SD 1.x: 1, SD 2.x and SDXL: 2)
  // Attention heads of each encoder; 0 derives them from the width (64 channels a head).
  int64_t clip_l_heads = 0, open_clip_heads = 0;
  int comma_backtrack = 20;  // clip_windows.h
};

struct TextConditioning {
  Tensor context;  // [1, 77 · windows, context channels]
  Tensor pooled;   // [1, projection] for SDXL, else undefined
};

class TextConditioner {
 public:
  // Fails for an architecture without CLIP conditioning, or when the model lacks an encoder.
  TextConditioner(WeightStore& store, Architecture arch, const ClipTokenizer& tokenizer,
                  const TextConditioningOptions& options = {});

  TextConditioning encode(Backend& backend, std::string_view prompt) const;

  // The windows each encoder reads (they differ in the padding id only).
  ClipWindows windows(std::string_view prompt, bool open_clip) const;

 private:
  Tensor encode_windows(Backend& backend, const ClipTextTransformer& encoder,
                        const ClipWindows& windows, bool final_norm, Tensor* pooled) const;

  Architecture arch_;
  const ClipTokenizer& tokenizer_;
  TextConditioningOptions options_;
  int clip_skip_ = 1;
  std::optional<ClipTextTransformer> clip_l_, open_clip_;
};

}  // namespace ebb
