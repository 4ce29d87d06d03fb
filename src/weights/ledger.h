#pragma once
// The ledger records every allocation, free, load and eviction of weights and buffers with
// bytes, device, component and time. Peak figures come from it, not from guesses.
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ebb {

// Mark: a moment (a stage beginning or ending, a sampler step) named by `component`.
// Sample: a measurement that owns nothing, named by `device` ("page_cache", "rss_anon",
// "rss_file", "page_cache_kept"), e.g. mincore residency of a component's file ranges.
enum class LedgerEvent { Map, Load, Free, Evict, Upload, Mark, Sample };
enum class MemoryTag { Weights, Activations, Scratch, Staging };

struct LedgerEntry {
  double time_s;  // since the ledger was created
  LedgerEvent event;
  MemoryTag tag;
  std::string device;  // "cpu", "cuda0", or "file" for mapped bytes that own no memory
  std::string component;
  std::string block;
  uint64_t bytes;
};

class Ledger {
 public:
  Ledger();

  // Map: bytes reachable through a mapping (no owned memory). Load/Upload add owned bytes on
  // the device, Free/Evict remove them.
  void record(LedgerEvent event, MemoryTag tag, const std::string& device,
              const std::string& component, const std::string& block, uint64_t bytes);

  void mark(const std::string& label);
  void sample(const std::string& what, const std::string& component, uint64_t bytes);

  uint64_t current(const std::string& device, MemoryTag tag) const;
  uint64_t peak(const std::string& device, MemoryTag tag) const;
  // Peak of all tags together on one device.
  uint64_t peak_total(const std::string& device) const;
  // Devices that held owned bytes at some point ("cpu", "sim0", ...).
  std::vector<std::string> devices() const;
  // Owned bytes of one component on one device now (every tag).
  uint64_t held(const std::string& device, const std::string& component) const;
  std::vector<LedgerEntry> entries() const;
  nlohmann::json to_json() const;

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
  mutable std::mutex mutex_;
  std::vector<LedgerEntry> entries_;
  std::map<std::pair<std::string, MemoryTag>, uint64_t> current_, peak_;
  std::map<std::string, uint64_t> current_total_, peak_total_;
  std::map<std::pair<std::string, std::string>, uint64_t> held_;  // (device, component)
};

const char* ledger_event_name(LedgerEvent e);
const char* memory_tag_name(MemoryTag t);

}  // namespace ebb
