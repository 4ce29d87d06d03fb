#pragma once
// Name <-> enum tables for the user-facing choices (sampler, schedule), so that a wrong name is
// answered with the list of right ones.
#include <fmt/format.h>

#include <span>
#include <string>
#include <string_view>

#include "core/error.h"

namespace ebb {

template <typename Enum>
struct EnumName {
  Enum value;
  std::string_view name;
};

template <typename Enum>
Enum parse_enum_name(std::string_view what, std::string_view name,
                     std::span<const EnumName<Enum>> table) {
  std::string valid;
  for (const EnumName<Enum>& entry : table) {
    if (entry.name == name) return entry.value;
    valid += valid.empty() ? "" : ", ";
    valid += entry.name;
  }
  fail("unknown {} '{}' (valid: {})", what, name, valid);
}

template <typename Enum>
std::string_view enum_name(Enum value, std::span<const EnumName<Enum>> table) {
  for (const EnumName<Enum>& entry : table) {
    if (entry.value == value) return entry.name;
  }
  fail("invalid enum value {}", static_cast<int>(value));
}

}  // namespace ebb
