#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ebb {

struct DeviceInfo {
  std::string id;    // as --backend names it: "cpu", "cuda0", ...
  std::string name;  // what the hardware calls itself
  uint64_t total_memory = 0;
  uint64_t free_memory = 0;
};

// The CPU first, then every GPU the built backends can see. Notes on missing GPUs (no driver,
// backend not built) go to `notes`.
std::vector<DeviceInfo> list_devices(std::vector<std::string>& notes);

}  // namespace ebb
