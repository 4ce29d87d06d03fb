#pragma once
// A fresh directory per test under the build tree (not /tmp, which may be tmpfs and so behave
// differently for page-cache and O_DIRECT tests); removed when the test ends.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace ebb::test {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Parameterized tests have a '/' in both names; one flat directory is easier to remove.
    std::string name = std::string(info->test_suite_name()) + "." + info->name();
    for (char& c : name) c = c == '/' ? '.' : c;
    path_ = std::filesystem::path(EBB_BINARY_DIR) / "test-tmp" / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ebb::test
