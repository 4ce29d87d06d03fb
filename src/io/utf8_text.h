#pragma once
// Text checks shared by the file-format readers: names in files must be UTF-8, and names put
// into error messages must stay readable however hostile the file.
#include <string>
#include <string_view>

namespace ebb {

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view s);

// `s` as an error message shows it: control bytes (and every non-ASCII byte when `s` is not
// valid UTF-8) become \xNN, and long names are cut with "...".
std::string printable_name(std::string_view s);

}  // namespace ebb
