#include "pipeline/clip_windows.h"

#include <algorithm>
#include <optional>

namespace ebb {
namespace {

class WindowBuilder {
 public:
  WindowBuilder(const ClipWindowOptions& options, int32_t comma_id)
      : options_(options), comma_id_(comma_id) {}

  void add(int32_t id, float weight) {
    if (id == comma_id_) {
      last_comma_ = tokens_.size();
    } else if (options_.comma_backtrack > 0 && tokens_.size() == ClipWindows::kPromptTokens &&
               last_comma_ &&
               tokens_.size() - *last_comma_ <= static_cast<size_t>(options_.comma_backtrack)) {
      const auto split = static_cast<std::ptrdiff_t>(*last_comma_ + 1);
      std::vector<int32_t> moved_tokens(tokens_.begin() + split, tokens_.end());
      std::vector<float> moved_weights(weights_.begin() + split, weights_.end());
      tokens_.resize(static_cast<size_t>(split));
      weights_.resize(static_cast<size_t>(split));
      close_window();
      tokens_ = std::move(moved_tokens);
      weights_ = std::move(moved_weights);
    }
    if (tokens_.size() == ClipWindows::kPromptTokens) close_window();
    tokens_.push_back(id);
    weights_.push_back(weight);
  }

  void close_window() {
    const size_t start = out_.ids.size();
    out_.ids.push_back(ClipVocab::kStartOfText);
    out_.ids.insert(out_.ids.end(), tokens_.begin(), tokens_.end());
    out_.ids.resize(start + ClipWindows::kLength - 1, ClipVocab::kEndOfText);
    out_.ids.push_back(ClipVocab::kEndOfText);
    out_.weights.push_back(1.0f);
    out_.weights.insert(out_.weights.end(), weights_.begin(), weights_.end());
    out_.weights.resize(start + ClipWindows::kLength, 1.0f);
    if (options_.pad_id != ClipVocab::kEndOfText) {
      const auto window = out_.ids.begin() + static_cast<std::ptrdiff_t>(start);
      const auto end_token = std::find(window, out_.ids.end(), ClipVocab::kEndOfText);
      std::fill(end_token + 1, out_.ids.end(), options_.pad_id);
    }
    tokens_.clear();
    weights_.clear();
    last_comma_.reset();
  }

  ClipWindows finish() {
    if (!tokens_.empty() || out_.ids.empty()) close_window();
    return std::move(out_);
  }

 private:
  const ClipWindowOptions& options_;
  const int32_t comma_id_;
  std::vector<int32_t> tokens_;
  std::vector<float> weights_;
  std::optional<size_t> last_comma_;
  ClipWindows out_;
};

}  // namespace

ClipWindows make_clip_windows(const ClipTokenizer& tokenizer,
                              std::span<const PromptSegment> segments,
                              const ClipWindowOptions& options) {
  WindowBuilder builder(options, tokenizer.encode(",").front());
  for (const PromptSegment& segment : segments) {
    if (segment.is_break) {
      builder.close_window();
      continue;
    }
    const auto weight = static_cast<float>(segment.weight);
    for (int32_t id : tokenizer.encode(segment.text)) builder.add(id, weight);
  }
  return builder.finish();
}

}  // namespace ebb
