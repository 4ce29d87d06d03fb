// Any input must either parse or raise ebb::Error; a crash, a sanitizer report or any other
// exception is a bug.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/error.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kName = "fuzz.gguf";
  try {
    ebb::parse_gguf({reinterpret_cast<const std::byte*>(data), size}, kName);
  } catch (const ebb::Error&) {
  }
  return 0;
}
