#include "common/reference_time.h"

#include <cstdio>

#include <gtest/gtest.h>

namespace flashmla::test {
namespace {

double g_total_reference_seconds = 0.0;
const ::testing::TestInfo* g_timed_test = nullptr;
double g_test_reference_seconds = 0.0;

class ReferenceTimeReport : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_total_reference_seconds > 0.0) {
      std::printf("[ reference ] CPU reference time, all tests: %.1f s\n", g_total_reference_seconds);
    }
  }
};
// Registered with the binary that uses add_reference_time (same object file).
::testing::Environment* const g_reference_time_report =
    ::testing::AddGlobalTestEnvironment(new ReferenceTimeReport);

}  // namespace

void add_reference_time(double seconds) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  if (test != g_timed_test) {
    g_timed_test = test;
    g_test_reference_seconds = 0.0;
  }
  g_test_reference_seconds += seconds;
  g_total_reference_seconds += seconds;
  if (test != nullptr) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.2f", g_test_reference_seconds);
    ::testing::Test::RecordProperty("reference_seconds", text);
  }
}

}  // namespace flashmla::test
