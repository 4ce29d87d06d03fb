#include "weights/block_key.h"

#include <algorithm>
#include <cctype>

namespace ebb {
namespace {

constexpr std::string_view kLayers = "transformer_blocks";

bool numeric(std::string_view part) {
  return !part.empty() && std::all_of(part.begin(), part.end(), [](char ch) {
    return std::isdigit(static_cast<unsigned char>(ch)) != 0;
  });
}

// The end of the first numeric part at or after `begin` (npos when there is none), and the part
// before it in `container`.
size_t numeric_part_end(std::string_view name, size_t begin, std::string_view& container) {
  std::string_view previous;
  while (begin <= name.size()) {
    const size_t end = name.find('.', begin);
    if (end == std::string_view::npos) return std::string_view::npos;
    const std::string_view part = name.substr(begin, end - begin);
    if (numeric(part)) {
      container = previous;
      return end;
    }
    previous = part;
    begin = end + 1;
  }
  return std::string_view::npos;
}

}  // namespace

std::string_view block_key(std::string_view name) {
  std::string_view container;
  const size_t end = numeric_part_end(name, 0, container);
  if (end == std::string_view::npos) {
    const size_t last = name.rfind('.');
    return last == std::string_view::npos ? name : name.substr(0, last);
  }
  // A numbered transformer layer inside the block is a block of its own.
  for (size_t at = end + 1; at < name.size();) {
    const size_t layer_end = numeric_part_end(name, at, container);
    if (layer_end == std::string_view::npos) break;
    if (container == kLayers) return name.substr(0, layer_end);
    at = layer_end + 1;
  }
  return name.substr(0, end);
}

}  // namespace ebb
