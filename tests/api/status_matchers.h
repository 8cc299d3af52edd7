// GoogleTest predicates on a Status: its code, and a substring of its
// message, so every rejection test pins both what kind of error it is and
// the words a user will read.
#pragma once

#include <cstring>

#include <gtest/gtest.h>

#include "flashmla/status.h"

namespace flashmla::test {

inline ::testing::AssertionResult has_status(const Status& status, StatusCode code,
                                             const char* substring) {
  if (status.code != code) {
    return ::testing::AssertionFailure() << "code is \"" << to_string(status.code)
                                         << "\", expected \"" << to_string(code)
                                         << "\"; message: \"" << status.message << "\"";
  }
  if (std::strstr(status.message, substring) == nullptr) {
    return ::testing::AssertionFailure() << "message \"" << status.message << "\" lacks \""
                                         << substring << "\"";
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult is_ok(const Status& status) {
  return has_status(status, StatusCode::kOk, "");
}
inline ::testing::AssertionResult is_invalid(const Status& status, const char* substring) {
  return has_status(status, StatusCode::kInvalidArgument, substring);
}
inline ::testing::AssertionResult is_not_supported(const Status& status, const char* substring) {
  return has_status(status, StatusCode::kNotSupported, substring);
}

}  // namespace flashmla::test
