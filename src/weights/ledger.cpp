#include "weights/ledger.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace ebb {

const char* ledger_event_name(LedgerEvent e) {
  switch (e) {
    case LedgerEvent::Map:
      return "map";
    case LedgerEvent::Load:
      return "load";
    case LedgerEvent::Free:
      return "free";
    case LedgerEvent::Evict:
      return "evict";
    case LedgerEvent::Upload:
      return "upload";
    case LedgerEvent::Mark:
      return "mark";
    case LedgerEvent::Sample:
      return "sample";
  }
  return "?";
}

const char* memory_tag_name(MemoryTag t) {
  switch (t) {
    case MemoryTag::Weights:
      return "weights";
    case MemoryTag::Activations:
      return "activations";
    case MemoryTag::Scratch:
      return "scratch";
    case MemoryTag::Staging:
      return "staging";
  }
  return "?";
}

Ledger::Ledger() : start_(Clock::now()) {}

void Ledger::record(LedgerEvent event, MemoryTag tag, const std::string& device,
                    const std::string& component, const std::string& block, uint64_t bytes) {
  std::lock_guard lock(mutex_);
  double t = std::chrono::duration<double>(Clock::now() - start_).count();
  entries_.push_back({t, event, tag, device, component, block, bytes});
  if (event == LedgerEvent::Map || event == LedgerEvent::Mark || event == LedgerEvent::Sample)
    return;
  auto key = std::make_pair(device, tag);
  uint64_t& cur = current_[key];
  uint64_t& total = current_total_[device];
  uint64_t& component_bytes = held_[{device, component}];
  if (event == LedgerEvent::Load || event == LedgerEvent::Upload) {
    cur += bytes;
    total += bytes;
    component_bytes += bytes;
  } else {
    // Releasing more than is held is an accounting bug in Ebb, not a user error.
    if (bytes > cur || bytes > total)
      fail("memory ledger: {} of {} bytes of {} on {} ({}, block {}) but only {} are held",
           ledger_event_name(event), bytes, memory_tag_name(tag), device, component, block, cur);
    cur -= bytes;
    total -= bytes;
    component_bytes -= std::min(component_bytes, bytes);
  }
  peak_[key] = std::max(peak_[key], cur);
  peak_total_[device] = std::max(peak_total_[device], total);
}

void Ledger::mark(const std::string& label) {
  record(LedgerEvent::Mark, MemoryTag::Weights, "", label, "", 0);
}

void Ledger::sample(const std::string& what, const std::string& component, uint64_t bytes) {
  record(LedgerEvent::Sample, MemoryTag::Weights, what, component, "", bytes);
}

std::vector<std::string> Ledger::devices() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [device, bytes] : peak_total_) out.push_back(device);
  return out;
}

uint64_t Ledger::held(const std::string& device, const std::string& component) const {
  std::lock_guard lock(mutex_);
  auto it = held_.find({device, component});
  return it == held_.end() ? 0 : it->second;
}

uint64_t Ledger::current(const std::string& device, MemoryTag tag) const {
  std::lock_guard lock(mutex_);
  auto it = current_.find({device, tag});
  return it == current_.end() ? 0 : it->second;
}

uint64_t Ledger::peak(const std::string& device, MemoryTag tag) const {
  std::lock_guard lock(mutex_);
  auto it = peak_.find({device, tag});
  return it == peak_.end() ? 0 : it->second;
}

uint64_t Ledger::peak_total(const std::string& device) const {
  std::lock_guard lock(mutex_);
  auto it = peak_total_.find(device);
  return it == peak_total_.end() ? 0 : it->second;
}

std::vector<LedgerEntry> Ledger::entries() const {
  std::lock_guard lock(mutex_);
  return entries_;
}

nlohmann::json Ledger::to_json() const {
  std::lock_guard lock(mutex_);
  nlohmann::json events = nlohmann::json::array();
  for (const LedgerEntry& e : entries_)
    events.push_back({{"t", e.time_s},
                      {"event", ledger_event_name(e.event)},
                      {"tag", memory_tag_name(e.tag)},
                      {"device", e.device},
                      {"component", e.component},
                      {"block", e.block},
                      {"bytes", e.bytes}});
  nlohmann::json peaks = nlohmann::json::object();
  for (const auto& [key, bytes] : peak_) peaks[key.first][memory_tag_name(key.second)] = bytes;
  for (const auto& [device, bytes] : peak_total_) peaks[device]["total"] = bytes;
  return {{"events", events}, {"peak_bytes", peaks}};
}

}  // namespace ebb
