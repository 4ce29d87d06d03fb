#pragma once
// Asserts that `action` throws one ebb::Error whose message holds every fragment.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace ebb::test {

template <typename Action>
void expect_error_with(Action&& action, const std::vector<std::string>& fragments) {
  try {
    action();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const std::string& f : fragments) EXPECT_THAT(e.what(), ::testing::HasSubstr(f));
  }
}

}  // namespace ebb::test
