#pragma once
// Reads the raw little-endian arrays that tools/reference/make_quant_fixtures.py writes to
// tests/data/quant/.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace ebb::test {

template <typename T>
std::vector<T> read_quant_fixture(const std::string& name) {
  const std::string path = std::string(EBB_TEST_DATA_DIR) + "/quant/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "missing fixture " << path;
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.size() % sizeof(T), 0u) << path;
  std::vector<T> values(bytes.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

}  // namespace ebb::test
