#pragma once
// Which blocks of a streamed component stay resident, once a step has been measured. A block's
// upload hides behind compute only if compute runs long enough while it copies, and a UNet's
// blocks differ by an order of magnitude in compute per weight byte: a 320-channel block at
// 128² computes ~25 GFLOP per MB of weights, a 1280-channel layer at 32² ~2. Keeping the blocks
// with the least compute per byte resident leaves streamed the ones whose copies their own and
// their neighbours' compute covers, so the copy queue has work through the compute-heavy
// stretches at the pass's ends instead of idling there with a full upload ring.
//
// Compute per byte counts the bytes a block uploads in a step when streamed, so a block that
// uploads twice counts as half as much compute per byte (without measurements: twice-uploaded
// blocks stay resident first). Blocks are grouped in bands of similar compute per byte, so
// measurement noise does not split blocks of one kind (the ten layers of a transformer); the
// lowest bands are kept whole, and the band the budget runs out in is spread over the pass as
// the planner's first placement is, so its streamed blocks upload while its resident ones
// compute.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ebb {

struct BlockCost {
  uint64_t bytes;                   // as the device arena holds the block
  std::optional<double> compute_s;  // its compute in one measured step; none: not measured
  // Times a step needs the block: streamed, a block needed twice with more between than the
  // upload ring holds (a ResBlock with its transformer's projections, around ten layers)
  // uploads twice.
  int uploads = 1;
};

// One acquisition of a streamed block in a recorded step (WeightStore::measured_pass), in the
// order of the pass, for reports and for bounding what streaming can reach.
struct MeasuredAcquisition {
  std::string block;
  uint64_t bytes = 0;  // its tensors' bytes on the device (what an upload copies)
  // Device time from its upload wait to the next acquisition's (or the step's end): its
  // compute. None where the device has no compute timings (the simulated device).
  std::optional<double> compute_s;
  uint64_t others_bytes = 0;  // device memory all but weights held as it was acquired
  bool resident = false;      // resident after that step
};

// The spread rule: a block of `size` bytes stays resident when that brings the resident bytes
// (`held`) nearer to `share` of the bytes passed so far (`passed`, this block included).
bool spread_keeps(uint64_t held, uint64_t size, uint64_t passed, double share);

// For blocks in the order of the pass (each once), whether each stays resident: at most
// `limit` bytes of them. Without measurements every block is alike and the resident ones are
// spread over the pass by bytes.
std::vector<bool> choose_resident(std::span<const BlockCost> pass, uint64_t limit);

}  // namespace ebb
