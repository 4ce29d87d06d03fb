// Replays every input the fuzzers ever crashed on (and a few hand-made tricky ones): each must
// parse or fail with ebb::Error, under the sanitizers too.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace ebb {
namespace {

namespace fs = std::filesystem;

const fs::path kRegressions = EBB_TEST_DATA_DIR "/../../fuzz/regressions";

std::vector<std::byte> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

void replay(const std::string& target,
            const std::function<void(std::span<const std::byte>, const std::string&)>& parse) {
  fs::path dir = kRegressions / target;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int replayed = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    SCOPED_TRACE(entry.path().string());
    std::vector<std::byte> bytes = read_file(entry.path());
    try {
      parse(bytes, entry.path().filename().string());
    } catch (const Error&) {
    }
    ++replayed;
  }
  EXPECT_GT(replayed, 0) << "no inputs in " << dir;
}

TEST(FuzzRegressions, Safetensors) {
  replay("safetensors_fuzz", [](std::span<const std::byte> file, const std::string& name) {
    parse_safetensors(file, name);
  });
}

TEST(FuzzRegressions, Gguf) {
  replay("gguf_fuzz",
         [](std::span<const std::byte> file, const std::string& name) { parse_gguf(file, name); });
}

}  // namespace
}  // namespace ebb
