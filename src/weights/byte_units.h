#pragma once
// Byte counts for people: "3.20 GiB", "12.5 MiB", "640 KiB", "17 B".
#include <fmt/format.h>

#include <cstdint>
#include <string>

namespace ebb {

inline std::string format_bytes(uint64_t bytes) {
  const auto b = static_cast<double>(bytes);
  if (bytes >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", b / (1 << 30));
  if (bytes >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", b / (1 << 20));
  if (bytes >= (uint64_t{1} << 10)) return fmt::format("{:.0f} KiB", b / (1 << 10));
  return fmt::format("{} B", bytes);
}

}  // namespace ebb
