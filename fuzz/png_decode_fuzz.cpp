// Fuzzes PNG decoding (img2img input): any bytes give an image or an ebb::Error.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/png_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    ebb::decode_png({data, size}, "fuzz.png");
  } catch (const ebb::Error&) {
  }
  return 0;
}
