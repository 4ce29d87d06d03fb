#include "models/text_conditioning.h"

#include <vector>

#include "core/error.h"
#include "models/clip.h"
#include "pipeline/prompt_weights.h"

namespace ebb {
namespace {

// A1111's emphasis on one window's output hidden [1, L, D] with one weight per token.
Tensor apply_emphasis(Backend& backend, const Tensor& hidden, std::span<const float> weights) {
  bool weighted = false;
  for (float w : weights) weighted = weighted || w != 1.0f;
  if (!weighted) return hidden;  // keeps unweighted prompts bit-identical to diffusers
  std::vector<float> values = backend.to_floats(hidden);
  const size_t width = values.size() / weights.size();
  double before = 0, after = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    before += values[i];
    values[i] *= weights[i / width];
    after += values[i];
  }
  // Means of the same element count: their ratio is the ratio of the sums.
  const auto rescale = static_cast<float>(before / after);
  for (float& v : values) v *= rescale;
  return backend.from_floats(hidden.shape(), values, "emphasis");
}

}  // namespace

TextConditioner::TextConditioner(WeightStore& store, Architecture arch,
                                 const ClipTokenizer& tokenizer,
                                 const TextConditioningOptions& options)
    : arch_(arch), tokenizer_(tokenizer), options_(options) {
  switch (arch) {
    case Architecture::SD1:
      clip_l_.emplace(make_clip_text_encoder(store, "clip_l", options.clip_l_heads));
      break;
    case Architecture::SD2:
      open_clip_.emplace(make_open_clip_text_encoder(store, "clip_h", options.open_clip_heads));
      break;
    case Architecture::SDXL:
      clip_l_.emplace(make_clip_text_encoder(store, "clip_l", options.clip_l_heads));
      open_clip_.emplace(make_open_clip_text_encoder(store, "clip_g", options.open_clip_heads));
      break;
    default:
      fail("text conditioning: {} has no CLIP text conditioning", architecture_name(arch));
  }
  if (options.clip_skip < 0) fail("text conditioning: clip skip {} is negative", options.clip_skip);
  clip_skip_ = options.clip_skip > 0 ? options.clip_skip : (arch == Architecture::SD1 ? 1 : 2);
}

ClipWindows TextConditioner::windows(std::string_view prompt, bool open_clip) const {
  const ClipWindowOptions window_options{
      .pad_id = open_clip ? 0 : ClipVocab::kEndOfText,
      .comma_backtrack = options_.comma_backtrack,
  };
  return make_clip_windows(tokenizer_, parse_prompt_weights(prompt), window_options);
}

Tensor TextConditioner::encode_windows(Backend& backend, const ClipTextTransformer& encoder,
                                       const ClipWindows& windows, bool final_norm,
                                       Tensor* pooled) const {
  std::vector<Tensor> parts;
  for (size_t i = 0; i < windows.count(); ++i) {
    const auto ids = std::span(windows.ids).subspan(i * ClipWindows::kLength, ClipWindows::kLength);
    const auto weights =
        std::span(windows.weights).subspan(i * ClipWindows::kLength, ClipWindows::kLength);
    const bool pool = pooled && i == 0;
    const ClipTextOutput out = encoder.run(
        backend, ids, {.skip = clip_skip_, .final_norm = final_norm, .last_normed = pool});
    if (pool) *pooled = open_clip_pooled(backend, encoder, out.last_normed, ids);
    parts.push_back(apply_emphasis(backend, out.hidden, weights));
  }
  return parts.size() == 1 ? parts.front() : backend.concat(parts, 1);
}

TextConditioning TextConditioner::encode(Backend& backend, std::string_view prompt) const {
  TextConditioning out;
  switch (arch_) {
    case Architecture::SD1:
      out.context = encode_windows(backend, *clip_l_, windows(prompt, false), true, nullptr);
      break;
    case Architecture::SD2:
      out.context = encode_windows(backend, *open_clip_, windows(prompt, true), true, nullptr);
      break;
    default: {
      const Tensor clip_l =
          encode_windows(backend, *clip_l_, windows(prompt, false), false, nullptr);
      const Tensor big_g =
          encode_windows(backend, *open_clip_, windows(prompt, true), false, &out.pooled);
      if (clip_l.dim(1) != big_g.dim(1))
        fail("text conditioning: CLIP-L took {} tokens and OpenCLIP {}", clip_l.dim(1),
             big_g.dim(1));
      out.context = backend.concat({clip_l, big_g}, 2);
    }
  }
  return out;
}

}  // namespace ebb
