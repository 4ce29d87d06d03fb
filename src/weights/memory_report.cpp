#include "weights/memory_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "weights/byte_units.h"

namespace ebb {
namespace {

// Peak page-cache residency: the sum over components of their latest sample, at its highest.
uint64_t peak_page_cache(const std::vector<LedgerEntry>& entries, size_t first) {
  std::map<std::string, uint64_t> latest;
  uint64_t peak = 0;
  for (size_t i = first; i < entries.size(); ++i) {
    const LedgerEntry& e = entries[i];
    if (e.event != LedgerEvent::Sample || e.device != "page_cache") continue;
    latest[e.component] = e.bytes;
    uint64_t sum = 0;
    for (const auto& [component, bytes] : latest) sum += bytes;
    peak = std::max(peak, sum);
  }
  return peak;
}

// Owned weight bytes per device, replayed from `first` on (starting from what was held then).
void weight_peaks(const std::vector<LedgerEntry>& entries, size_t first, MemorySummary& s) {
  std::map<std::string, uint64_t> held;
  for (size_t i = 0; i < entries.size(); ++i) {
    const LedgerEntry& e = entries[i];
    if (e.tag != MemoryTag::Weights) continue;
    uint64_t& h = held[e.device];
    if (e.event == LedgerEvent::Load || e.event == LedgerEvent::Upload)
      h += e.bytes;
    else if (e.event == LedgerEvent::Free || e.event == LedgerEvent::Evict)
      h -= std::min(h, e.bytes);
    else
      continue;
    if (i >= first) {
      uint64_t& peak = s.peak_device[e.device]["weights"];
      peak = std::max(peak, h);
    }
  }
}

}  // namespace

MemorySummary summarize(const std::vector<LedgerEntry>& entries, size_t first_entry, double load_s,
                        const std::string& arena_device, const ArenaStats& arena) {
  MemorySummary s;
  s.load_s = load_s;
  weight_peaks(entries, first_entry, s);
  for (int t = 0; t < kMemoryTagCount; ++t) {
    const auto tag = static_cast<MemoryTag>(t);
    if (arena.peak[static_cast<size_t>(t)] == 0) continue;
    uint64_t& peak = s.peak_device[arena_device][memory_tag_name(tag)];
    peak = std::max(peak, arena.peak[static_cast<size_t>(t)]);
  }
  s.peak_page_cache = peak_page_cache(entries, first_entry);
  double start = -1, previous = -1, step_sum = 0, end = -1;
  for (size_t i = first_entry; i < entries.size(); ++i) {
    const LedgerEntry& e = entries[i];
    if (e.event == LedgerEvent::Sample && e.device == "rss_anon")
      s.peak_rss_anon = std::max(s.peak_rss_anon, e.bytes);
    if (e.event == LedgerEvent::Sample && e.device == "rss_file")
      s.peak_rss_file = std::max(s.peak_rss_file, e.bytes);
    if (e.event != LedgerEvent::Mark) continue;
    if (e.component == "begin text_encoders" && start < 0) start = e.time_s;
    if (e.component == "begin diffusion") previous = e.time_s;
    if (e.component == "end vae") end = e.time_s;
    if (e.component == "step") {
      if (s.steps == 0 && start >= 0) s.first_step_s = e.time_s - start;
      ++s.steps;
      if (previous >= 0) step_sum += e.time_s - previous;
      previous = e.time_s;
    }
  }
  if (s.steps > 0) s.mean_step_s = step_sum / s.steps;
  if (start >= 0 && end >= start) s.total_s = end - start;
  return s;
}

nlohmann::json summary_json(const MemorySummary& s) {
  return {{"peak_device_bytes", s.peak_device},
          {"peak_rss_anon_bytes", s.peak_rss_anon},
          {"peak_rss_file_bytes", s.peak_rss_file},
          {"peak_page_cache_bytes", s.peak_page_cache},
          {"load_s", s.load_s},
          {"time_to_first_step_s", s.first_step_s},
          {"mean_step_s", s.mean_step_s},
          {"steps", s.steps},
          {"total_s", s.total_s}};
}

nlohmann::json measured_pass_json(std::span<const MeasuredAcquisition> pass) {
  nlohmann::json out = nlohmann::json::array();
  for (const MeasuredAcquisition& a : pass)
    out.push_back({{"block", a.block},
                   {"bytes", a.bytes},
                   {"compute_s", a.compute_s ? nlohmann::json(*a.compute_s) : nlohmann::json()},
                   {"others_bytes", a.others_bytes},
                   {"resident", a.resident}});
  return out;
}

std::string summary_line(const MemorySummary& s) {
  std::string line = "memory:";
  for (const auto& [device, tags] : s.peak_device) {
    uint64_t total = 0;
    std::string parts;
    for (const auto& [tag, bytes] : tags) {
      total += bytes;
      parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", tag, format_bytes(bytes));
    }
    line += fmt::format(" {} ≤{} ({}) ·", device, format_bytes(total), parts);
  }
  line += fmt::format(
      " RSS {} anon + {} file · page cache {} · load {:.2f} s · first step {:.2f} s · step "
      "{:.2f} s · total {:.2f} s",
      format_bytes(s.peak_rss_anon), format_bytes(s.peak_rss_file), format_bytes(s.peak_page_cache),
      s.load_s, s.first_step_s, s.mean_step_s, s.total_s);
  return line;
}

}  // namespace ebb
