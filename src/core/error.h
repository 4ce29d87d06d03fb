#pragma once
// One exception type for every user-facing failure: a malformed file, flag or request.
// Messages must name what is wrong and where (file, tensor, byte offset, flag) so the
// user can act without reading the source.
#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace ebb {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message) : std::runtime_error(std::move(message)) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ebb
