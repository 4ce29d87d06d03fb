#pragma once
// The ledger summarised for users: peak device memory by tag, peak resident memory split into
// anonymous and file-backed, peak page-cache residency of the model files, and the times
// (load, first step, mean step, total). --memory-report writes it with the ledger as JSON; the
// CLI prints it in one line after each image.
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "backend/arena.h"
#include "weights/ledger.h"
#include "weights/residency_choice.h"

namespace ebb {

struct MemorySummary {
  // device → tag → peak bytes: weights from the ledger, the rest from the compute arena.
  std::map<std::string, std::map<std::string, uint64_t>> peak_device;
  uint64_t peak_rss_anon = 0, peak_rss_file = 0;
  uint64_t peak_page_cache = 0;  // the model files' resident bytes, summed over components
  double load_s = 0;             // reading, converting and uploading weights
  double first_step_s = 0;       // from the text encoders' start to the first step's end
  double mean_step_s = 0;
  double total_s = 0;  // from the text encoders' start to the VAE's end
  int steps = 0;
};

// Summarises the ledger's entries from `first_entry` on (one image, or the whole run from 0);
// `arena_device` names the device whose compute arena `arena` is.
MemorySummary summarize(const std::vector<LedgerEntry>& entries, size_t first_entry, double load_s,
                        const std::string& arena_device, const ArenaStats& arena);

nlohmann::json summary_json(const MemorySummary& summary);
// The measured step of a streamed component, one object per acquisition (compute_s null where
// the device has no timings); bench/streaming_bound.py reads it.
nlohmann::json measured_pass_json(std::span<const MeasuredAcquisition> pass);
// "memory: cpu ≤1.20 GiB (activations 410.0 MiB, weights 819.2 MiB) · RSS 0.90 GiB anon +
//  1.60 GiB file · page cache 1.60 GiB · load 0.41 s · first step 1.20 s · step 0.95 s ·
//  total 21.30 s"
std::string summary_line(const MemorySummary& summary);

}  // namespace ebb
