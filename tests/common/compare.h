// The comparator of spec section 2: a result against the fp64 reference.
//
//   out: every element |out - ref| <= 1e-3 + (2/128) |ref|; cosine distance
//        of the whole tensor <= 5e-6; NaN/inf at exactly the same positions;
//        not all zero unless the case is expected to be empty (then exactly 0).
//   lse: |lse - ref| <= 1e-5 + 1.3e-4 |ref|; +-inf/NaN at the same positions.
//
// Usage: EXPECT_TRUE(compare_out(actual, expected).assertion());
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace flashmla::test {

struct CompareOptions {
  std::string name = "out";     // the tensor's name in the report
  std::vector<int64_t> shape;   // logical shape, to print multi-indices (optional)
  bool expect_empty = false;    // out: every element must be exactly 0
  double abs_tol = 1e-3;
  double rel_tol = 2.0 / 128.0;
  double max_cos_distance = 5e-6;  // < 0 skips the cosine check
};

// lse tolerances of the spec; no cosine or all-zero check.
CompareOptions lse_options(std::string name = "lse", std::vector<int64_t> shape = {});

struct CompareResult {
  bool ok = true;
  int64_t num_elements = 0;
  int64_t num_out_of_bounds = 0;   // finite elements beyond the tolerance
  int64_t num_anomaly_mismatch = 0;  // NaN/inf where the reference differs
  int64_t first_bad = -1;          // logical index of the first failure
  double max_abs_error = 0.0;
  double cos_distance = 0.0;
  bool actual_all_zero = false;
  std::string report;  // empty when ok

  ::testing::AssertionResult assertion() const;
};

CompareResult compare_out(const std::vector<double>& actual, const std::vector<double>& expected,
                          const CompareOptions& options = {});
CompareResult compare_lse(const std::vector<double>& actual, const std::vector<double>& expected,
                          const CompareOptions& options = lse_options());

}  // namespace flashmla::test
