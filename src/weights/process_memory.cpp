#include "weights/process_memory.h"

#include <fstream>
#include <sstream>

namespace ebb {

ResidentMemory resident_memory(const std::string& status_path) {
  ResidentMemory m;
  std::ifstream in(status_path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kib = 0;
    if (!(fields >> key >> kib)) continue;
    if (key == "RssAnon:") m.anon = kib * 1024;
    if (key == "RssFile:") m.file = kib * 1024;
  }
  return m;
}

}  // namespace ebb
