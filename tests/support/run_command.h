#pragma once
// Runs a shell command as a user would, for the tests of the `ebb` binary.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace ebb::test {

struct CommandResult {
  int status;       // exit status; -1 when the command could not run or was killed
  std::string out;  // stdout (add 2>&1 to the command for stderr too)
};

inline CommandResult run_command(const std::string& command) {
  CommandResult r{-1, ""};
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace ebb::test
