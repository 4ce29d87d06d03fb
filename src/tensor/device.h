#pragma once
// Where a tensor's bytes live. Pointers of a CUDA tensor are device pointers: only that
// backend's kernels and copies may touch them.
#include <cstdint>
#include <string>

namespace ebb {

enum class DeviceKind : uint8_t { Cpu, Cuda };

struct Device {
  DeviceKind kind = DeviceKind::Cpu;
  int index = 0;

  static Device cpu() { return {DeviceKind::Cpu, 0}; }
  static Device cuda(int index) { return {DeviceKind::Cuda, index}; }
  bool operator==(const Device&) const = default;
  // As --backend names it: "cpu", "cuda0", ...
  std::string name() const {
    return kind == DeviceKind::Cpu ? "cpu" : "cuda" + std::to_string(index);
  }
};

}  // namespace ebb
