#pragma once
// A GGUF metadata value: any of the format's scalar types, a string, or an array of values
// (arrays may nest). The reader produces these; the writer consumes them.
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ebb {

// GGUF's value type ids (gguf.md): UINT8=0 … FLOAT64=12.
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

struct GgufValue;
struct GgufArray {
  GgufType element_type = GgufType::U8;
  std::vector<GgufValue> items;
};

struct GgufValue {
  std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string,
               GgufArray, uint64_t, int64_t, double>
      value;
  // The type tag the file used; the variant index alone cannot tell u8 from bool on disk.
  GgufType type() const { return static_cast<GgufType>(value.index()); }
};

using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

}  // namespace ebb
