#include "weights/budget_flags.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace ebb {
namespace {

constexpr double kBytesPerGiB = 1024.0 * 1024.0 * 1024.0;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr double kMaxGiB = 1024.0 * 1024.0;  // 1 PiB: anything larger is a typo

[[noreturn]] void bad_entry(std::string_view flag, std::string_view entry,
                            std::string_view problem) {
  fail("{}: \"{}\": {}", flag, entry, problem);
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t";
  size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

// The comma-separated entries of a flag's value, trimmed; an empty value or entry is an error.
std::vector<std::string_view> split_entries(std::string_view flag, std::string_view value) {
  if (trim(value).empty()) fail("{}: the value is empty", flag);
  std::vector<std::string_view> entries;
  size_t start = 0;
  while (true) {
    size_t comma = value.find(',', start);
    std::string_view entry = trim(value.substr(start, comma - start));
    if (entry.empty()) fail("{}: \"{}\": an entry between commas is empty", flag, value);
    entries.push_back(entry);
    if (comma == std::string_view::npos) return entries;
    start = comma + 1;
  }
}

struct KeyValue {
  std::optional<std::string_view> key;  // absent for a bare value
  std::string_view value;
};

KeyValue split_key_value(std::string_view entry) {
  size_t equals = entry.find('=');
  if (equals == std::string_view::npos) return {std::nullopt, entry};
  return {trim(entry.substr(0, equals)), trim(entry.substr(equals + 1))};
}

double parse_gib(std::string_view flag, std::string_view entry, std::string_view text) {
  double gib = 0;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), gib, std::chars_format::fixed);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(gib))
    bad_entry(flag, entry, fmt::format("\"{}\" is not a number of GiB", text));
  if (std::fabs(gib) > kMaxGiB)
    bad_entry(flag, entry, fmt::format("{} GiB is out of range (at most {} GiB)", text, kMaxGiB));
  return gib;
}

uint64_t gib_to_bytes(double gib) {
  return static_cast<uint64_t>(std::llround(std::fabs(gib) * kBytesPerGiB));
}

// "cpu" or "cudaN", from "cpu", "cuda", "cudaN" or "cuda:N".
std::string parse_device(std::string_view flag, std::string_view entry, std::string_view text,
                         int cuda_device_count) {
  if (text == "cpu") return "cpu";
  std::optional<unsigned> index;
  if (text == "cuda") {
    index = 0;
  } else if (text.substr(0, 4) == "cuda") {
    std::string_view digits = text.substr(4);
    if (!digits.empty() && digits.front() == ':') digits.remove_prefix(1);
    unsigned n = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (!digits.empty() && ec == std::errc() && end == digits.data() + digits.size()) index = n;
  }
  if (!index)
    bad_entry(flag, entry, fmt::format("\"{}\" is not a device (cpu, cudaN or cuda:N)", text));
  if (cuda_device_count <= 0)
    bad_entry(flag, entry, fmt::format("there is no CUDA device, so no cuda{}", *index));
  if (*index >= static_cast<unsigned>(cuda_device_count))
    bad_entry(flag, entry,
              fmt::format("there is no cuda{}: the CUDA devices are cuda0 to cuda{}", *index,
                          cuda_device_count - 1));
  return fmt::format("cuda{}", *index);
}

// ---- system memory ----

std::optional<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

uint64_t parse_byte_count(const std::string& path, std::string_view text) {
  std::string_view digits = trim(text.substr(0, text.find('\n')));
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
    fail("{}: \"{}\" is not a byte count", path, digits);
  return value;
}

uint64_t mem_total(const std::string& path) {
  std::optional<std::string> text = read_small_file(path);
  if (!text) fail("{}: cannot read it to find the system's memory size", path);
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    constexpr std::string_view kKey = "MemTotal:";
    if (line.rfind(kKey, 0) != 0) continue;
    std::string_view rest = trim(std::string_view(line).substr(kKey.size()));
    std::string_view kib = rest.substr(0, rest.find(' '));
    if (trim(rest.substr(kib.size())) != "kB")
      fail("{}: MemTotal line \"{}\" is not in kB", path, line);
    return parse_byte_count(path, kib) * 1024;
  }
  fail("{}: no MemTotal line", path);
}

std::optional<uint64_t> cgroup_limit(const MemoryLimitFiles& files) {
  if (std::optional<std::string> v2 = read_small_file(files.cgroup_v2_max)) {
    if (trim(v2->substr(0, v2->find('\n'))) == "max") return std::nullopt;
    return parse_byte_count(files.cgroup_v2_max, *v2);
  }
  if (std::optional<std::string> v1 = read_small_file(files.cgroup_v1_limit))
    return parse_byte_count(files.cgroup_v1_limit, *v1);
  return std::nullopt;
}

// ---- placement ----

constexpr std::array<std::string_view, kPlacedComponentCount> kComponentNames = {
    "clip_l", "clip_h", "clip_g", "t5xxl", "diffusion", "vae"};
constexpr std::string_view kTextEncoderGroup = "clip";

bool is_text_encoder(PlacedComponent c) {
  return c == PlacedComponent::clip_l || c == PlacedComponent::clip_h ||
         c == PlacedComponent::clip_g || c == PlacedComponent::t5xxl;
}

bool is_backend_key(std::string_view key) {
  return key == kTextEncoderGroup ||
         std::find(kComponentNames.begin(), kComponentNames.end(), key) != kComponentNames.end();
}

// A shorthand flag spelling KEY=cpu: fine alone or repeating --backend, an error contradicting it.
void apply_cpu_shorthand(std::string_view flag, std::string_view key,
                         std::map<std::string, std::string, std::less<>>& keyed) {
  auto it = keyed.find(key);
  if (it == keyed.end()) {
    keyed.emplace(key, "cpu");
  } else if (it->second != "cpu") {
    fail("{}: contradicts --backend \"{}={}\"", flag, key, it->second);
  }
}

}  // namespace

VramBudget parse_max_vram(std::string_view value, int cuda_device_count) {
  constexpr std::string_view kFlag = "--max-vram";
  VramBudget budget;
  for (std::string_view entry : split_entries(kFlag, value)) {
    KeyValue kv = split_key_value(entry);
    double gib = parse_gib(kFlag, entry, kv.value);
    if (!kv.key) {
      if (budget.all_devices_gib)
        bad_entry(kFlag, entry, "a budget for every device is given twice");
      budget.all_devices_gib = gib;
      continue;
    }
    if (*kv.key == "cpu")
      bad_entry(kFlag, entry, "cpu is not a GPU (--max-ram limits host memory)");
    std::string device = parse_device(kFlag, entry, *kv.key, cuda_device_count);
    if (!budget.device_gib.emplace(device, gib).second)
      bad_entry(kFlag, entry, fmt::format("{} is given twice", device));
  }
  return budget;
}

uint64_t resolve_budget(const VramBudget& budget, const std::string& device, uint64_t free_bytes) {
  auto it = budget.device_gib.find(device);
  double gib = it != budget.device_gib.end() ? it->second : budget.all_devices_gib.value_or(0.0);
  if (gib == 0) return 0;
  uint64_t bytes = gib_to_bytes(gib);
  if (gib > 0) return std::max<uint64_t>(bytes, 1);
  if (bytes >= free_bytes)
    fail("--max-vram: {} has {:.2f} GiB free, not more than the {} GiB to leave free", device,
         free_bytes / kBytesPerGiB, -gib);
  return free_bytes - bytes;
}

double parse_max_ram(std::string_view value) {
  constexpr std::string_view kFlag = "--max-ram";
  std::string_view text = trim(value);
  if (text.empty()) fail("{}: the value is empty", kFlag);
  return parse_gib(kFlag, text, text);
}

uint64_t system_memory_limit(const MemoryLimitFiles& files) {
  uint64_t total = mem_total(files.meminfo);
  std::optional<uint64_t> cgroup = cgroup_limit(files);
  return cgroup ? std::min(total, *cgroup) : total;
}

uint64_t default_max_ram(const MemoryLimitFiles& files) {
  uint64_t limit = system_memory_limit(files);
  uint64_t margin = std::min(std::max(limit / 10, kGiB), limit / 2);
  return limit - margin;
}

uint64_t resolve_max_ram(std::optional<double> gib, const MemoryLimitFiles& files) {
  if (!gib) return default_max_ram(files);
  if (*gib == 0) return 0;
  uint64_t bytes = gib_to_bytes(*gib);
  if (*gib > 0) return std::max<uint64_t>(bytes, 1);
  uint64_t limit = system_memory_limit(files);
  if (bytes >= limit)
    fail("--max-ram: the system memory limit is {:.2f} GiB, not more than the {} GiB to leave free",
         limit / kBytesPerGiB, -*gib);
  return limit - bytes;
}

std::string_view placed_component_name(PlacedComponent component) {
  return kComponentNames[static_cast<size_t>(component)];
}

Placement parse_placement(const PlacementFlags& flags, int cuda_device_count) {
  constexpr std::string_view kBackend = "--backend";
  std::optional<std::string> bare;
  std::map<std::string, std::string, std::less<>> keyed;  // --backend key -> device
  if (!flags.backend.empty()) {
    for (std::string_view entry : split_entries(kBackend, flags.backend)) {
      KeyValue kv = split_key_value(entry);
      std::string device = parse_device(kBackend, entry, kv.value, cuda_device_count);
      if (!kv.key) {
        if (bare) bad_entry(kBackend, entry, "a device for every component is given twice");
        bare = device;
        continue;
      }
      if (!is_backend_key(*kv.key))
        bad_entry(kBackend, entry,
                  fmt::format("\"{}\" is not a component (clip, clip_l, clip_h, clip_g, t5xxl, "
                              "diffusion, vae)",
                              *kv.key));
      if (!keyed.emplace(*kv.key, device).second)
        bad_entry(kBackend, entry, fmt::format("{} is given twice", *kv.key));
    }
  }
  if (!flags.device.empty()) {
    std::string device =
        parse_device("--device", trim(flags.device), trim(flags.device), cuda_device_count);
    if (bare) fail("--device: {} given, but --backend already names {}", device, *bare);
    bare = device;
  }
  if (flags.clip_on_cpu) apply_cpu_shorthand("--clip-on-cpu", kTextEncoderGroup, keyed);
  if (flags.vae_on_cpu) apply_cpu_shorthand("--vae-on-cpu", "vae", keyed);

  std::string fallback = bare ? *bare : cuda_device_count > 0 ? "cuda0" : "cpu";
  Placement placement;
  for (int i = 0; i < kPlacedComponentCount; ++i) {
    auto component = static_cast<PlacedComponent>(i);
    auto own = keyed.find(placed_component_name(component));
    auto group = is_text_encoder(component) ? keyed.find(kTextEncoderGroup) : keyed.end();
    placement.device[i] = own != keyed.end()     ? own->second
                          : group != keyed.end() ? group->second
                                                 : fallback;
  }
  return placement;
}

}  // namespace ebb
