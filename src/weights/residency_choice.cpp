#include "weights/residency_choice.h"

#include <algorithm>
#include <map>

namespace ebb {
namespace {

// Blocks whose compute per byte is within this factor of the next one's share a band.
constexpr double kBandGap = 1.5;

// Each block's band, 0 for the least compute per uploaded byte: sorted, a new band starts
// wherever the next block computes more than kBandGap times the previous one per byte, so
// measurement noise does not split blocks of one kind. Without measurements every block counts
// as the same compute per byte of its own, so only the uploads a step tell blocks apart.
std::vector<int> bands(std::span<const BlockCost> pass) {
  const bool measured = std::any_of(pass.begin(), pass.end(),
                                    [](const BlockCost& b) { return b.compute_s.has_value(); });
  std::vector<std::pair<double, size_t>> cost;
  for (size_t i = 0; i < pass.size(); ++i) {
    const double uploads = std::max(pass[i].uploads, 1);
    if (!measured)
      cost.push_back({1 / uploads, i});
    else if (pass[i].compute_s)
      cost.push_back({std::max(*pass[i].compute_s, 1e-12) /
                          (static_cast<double>(std::max<uint64_t>(pass[i].bytes, 1)) * uploads),
                      i});
  }
  std::sort(cost.begin(), cost.end());
  std::vector<int> band(pass.size(), 0);
  int id = 0;
  for (size_t k = 0; k < cost.size(); ++k) {
    if (k > 0 && cost[k].first > kBandGap * cost[k - 1].first) ++id;
    band[cost[k].second] = id;
  }
  // Blocks left unmeasured beside measured ones (none a step leaves out) stream first.
  for (size_t i = 0; i < pass.size(); ++i)
    if (measured && !pass[i].compute_s) band[i] = id + 1;
  return band;
}

}  // namespace

bool spread_keeps(uint64_t held, uint64_t size, uint64_t passed, double share) {
  return static_cast<double>(held) + static_cast<double>(size) / 2 <=
         share * static_cast<double>(passed);
}

std::vector<bool> choose_resident(std::span<const BlockCost> pass, uint64_t limit) {
  std::vector<bool> resident(pass.size(), false);
  const std::vector<int> band = bands(pass);
  std::map<int, uint64_t> band_bytes;
  for (size_t i = 0; i < pass.size(); ++i) band_bytes[band[i]] += pass[i].bytes;
  // Whole bands from the least compute per byte while they fit; the next one is the margin.
  uint64_t kept = 0;
  std::optional<int> margin;
  for (const auto& [id, bytes] : band_bytes) {
    if (kept + bytes > limit) {
      margin = id;
      break;
    }
    kept += bytes;
  }
  uint64_t held = 0;
  for (size_t i = 0; i < pass.size(); ++i) {
    if (!margin || band[i] < *margin) {
      resident[i] = true;
      held += pass[i].bytes;
    }
  }
  if (!margin) return resident;
  // The margin band: a block is resident when that brings the band's resident bytes nearer to
  // its share of the band's bytes passed so far.
  const double share = static_cast<double>(limit - kept) / static_cast<double>(band_bytes[*margin]);
  uint64_t band_held = 0, band_passed = 0;
  for (size_t i = 0; i < pass.size(); ++i) {
    if (band[i] != *margin) continue;
    band_passed += pass[i].bytes;
    if (held + pass[i].bytes <= limit &&
        spread_keeps(band_held, pass[i].bytes, band_passed, share)) {
      resident[i] = true;
      held += pass[i].bytes;
      band_held += pass[i].bytes;
    }
  }
  return resident;
}

}  // namespace ebb
