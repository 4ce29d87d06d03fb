#pragma once
// The order a streamed component's blocks are acquired in, learned from the previous pass, so
// that the store can upload the blocks that come next before the model asks for them.
//
// A pass is the sequence of acquisitions from one acquisition of the pass's first block to the
// next (a UNet forward: its first block, the time embedding, comes once per pass). A block may
// come more than once in a pass (a spatial transformer's projections before and after its
// layers), so the prediction follows the position in the previous pass, not a successor per
// block. Repeated acquisitions of one block in a row count once.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ebb {

class StreamOrder {
 public:
  // `block` is acquired now.
  void acquired(uint32_t block);
  // The block predicted `k` acquisitions after the last one (k ≥ 1), wrapping from the end of
  // a pass to its start; none before a whole pass was seen or when the last acquisition was
  // not in the previous pass.
  std::optional<uint32_t> ahead(size_t k) const;
  // Acquisitions in the previous pass (0 before a whole pass was seen).
  size_t pass_length() const { return previous_.size(); }
  // The component's stage ended: the next acquisition starts a pass.
  void end_stage();

 private:
  std::vector<uint32_t> previous_, current_;
  std::optional<size_t> cursor_;  // the last acquisition's position in previous_
};

}  // namespace ebb
