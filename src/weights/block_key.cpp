#include "weights/block_key.h"

#include <algorithm>
#include <cctype>

namespace ebb {

std::string_view block_key(std::string_view name) {
  size_t begin = 0;
  while (begin <= name.size()) {
    size_t end = name.find('.', begin);
    if (end == std::string_view::npos) break;
    const std::string_view part = name.substr(begin, end - begin);
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char ch) {
          return std::isdigit(static_cast<unsigned char>(ch)) != 0;
        }))
      return name.substr(0, end);
    begin = end + 1;
  }
  const size_t last = name.rfind('.');
  return last == std::string_view::npos ? name : name.substr(0, last);
}

}  // namespace ebb
