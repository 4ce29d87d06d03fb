#pragma once
// The process's resident memory split as the kernel counts it: anonymous (owned buffers, heap)
// and file-backed (mapped model pages this process has touched).
#include <cstdint>
#include <string>

namespace ebb {

struct ResidentMemory {
  uint64_t anon = 0;
  uint64_t file = 0;
};

// RssAnon and RssFile of /proc/self/status (or `status_path`); zeros where the kernel has no
// such lines.
ResidentMemory resident_memory(const std::string& status_path = "/proc/self/status");

}  // namespace ebb
