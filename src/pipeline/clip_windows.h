#pragma once
// A weighted prompt as CLIP text-encoder input: windows of 77 tokens,
//   [<|startoftext|>] up to 75 prompt tokens [<|endoftext|>] padding
// with weight 1 on the start, end and padding tokens. Prompts longer than 75 tokens take
// several windows, which the caller encodes one by one and concatenates (AUTOMATIC1111,
// stable-diffusion.cpp); a prompt of at most 75 tokens gives the single window diffusers uses.
//
// How tokens are cut into windows (AUTOMATIC1111's tokenize_line, with its default
// comma_padding_backtrack of 20):
//  - segments are tokenized one by one (clip_tokenizer.h); a window takes 75 tokens;
//  - when a window is full and the next token is not a comma, and the window's last comma
//    (",</w>", id 267) is at most comma_backtrack tokens from its end, the tokens after that
//    comma move to the next window, so a phrase is not cut in two;
//  - BREAK closes the current window (even an empty one) and starts a new one;
//  - the last window is kept if it has tokens or is the only one (an empty prompt is one
//    window of start, end and padding).
// comma_backtrack = 0 cuts strictly every 75 tokens, which is what stable-diffusion.cpp does.
// Padding: <|endoftext|> (49407) for OpenAI CLIP-L, 0 for OpenCLIP (SD 2.x ViT-H, SDXL bigG);
// as in A1111, every token after the first <|endoftext|> of a window becomes padding.
#include <cstdint>
#include <span>
#include <vector>

#include "pipeline/clip_tokenizer.h"
#include "pipeline/clip_vocab.h"
#include "pipeline/prompt_weights.h"

namespace ebb {

struct ClipWindowOptions {
  int32_t pad_id = ClipVocab::kEndOfText;
  int comma_backtrack = 20;
};

struct ClipWindows {
  static constexpr size_t kLength = 77;
  static constexpr size_t kPromptTokens = kLength - 2;

  std::vector<int32_t> ids;    // count() * kLength
  std::vector<float> weights;  // one per id

  size_t count() const { return ids.size() / kLength; }
};

ClipWindows make_clip_windows(const ClipTokenizer& tokenizer,
                              std::span<const PromptSegment> segments,
                              const ClipWindowOptions& options = {});

}  // namespace ebb
