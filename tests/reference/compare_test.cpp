// The comparator must accept a correct result and reject each kind of
// wrong one: a perturbed element, NaN, inf, a wrong lse, an all-zero
// output, a systematic drift that only the cosine distance sees.
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "common/compare.h"
#include "common/random_values.h"

namespace flashmla::test {
namespace {

std::vector<double> reference_values(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = rng.value();
  return v;
}

TEST(Comparator, AcceptsIdenticalAndRoundedOutputs) {
  const std::vector<double> want = reference_values(4096, 1);
  EXPECT_TRUE(compare_out(want, want).ok);
  std::vector<double> rounded = want;
  for (auto& x : rounded) x = ref::bf16_to_float(ref::float_to_bf16(float(x)));
  const CompareResult r = compare_out(rounded, want);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_LT(r.cos_distance, 5e-6);
}

TEST(Comparator, RejectsOnePerturbedElement) {
  const std::vector<double> want = reference_values(1000, 2);
  std::vector<double> got = want;
  got[123] += 1e-3 + 0.02 * std::fabs(want[123]) + 1e-4;
  CompareOptions options;
  options.shape = {10, 100};
  const CompareResult r = compare_out(got, want, options);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.num_out_of_bounds, 1);
  EXPECT_EQ(r.first_bad, 123);
  EXPECT_NE(r.report.find("[1, 23]"), std::string::npos) << r.report;
  EXPECT_FALSE(r.assertion());
}

TEST(Comparator, RejectsNaNAndInfMismatches) {
  const std::vector<double> want = reference_values(100, 3);
  std::vector<double> got = want;
  got[7] = std::numeric_limits<double>::quiet_NaN();
  CompareResult r = compare_out(got, want);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.num_anomaly_mismatch, 1);
  got = want;
  got[9] = INFINITY;
  EXPECT_FALSE(compare_out(got, want).ok);
  // Same anomalies at the same positions are accepted.
  std::vector<double> want_nan = want;
  want_nan[5] = NAN;
  got = want_nan;
  EXPECT_TRUE(compare_out(got, want_nan).ok);
}

TEST(Comparator, RejectsWrongLse) {
  const std::vector<double> want = {1.5, -INFINITY, 20.0, 0.0};
  EXPECT_TRUE(compare_lse(want, want).ok);
  std::vector<double> got = want;
  got[2] = 20.0 + 1e-5 + 1.3e-4 * 20.0 + 1e-6;
  EXPECT_FALSE(compare_lse(got, want).ok);
  got = want;
  got[2] = 20.0 + 0.9 * (1e-5 + 1.3e-4 * 20.0);
  EXPECT_TRUE(compare_lse(got, want).ok);
  got = want;
  got[1] = INFINITY;  // the other empty-row convention is a mismatch
  EXPECT_FALSE(compare_lse(got, want).ok);
  got = want;
  got[1] = 0.0;
  EXPECT_FALSE(compare_lse(got, want).ok);
}

TEST(Comparator, RejectsAllZeroOutput) {
  const std::vector<double> want(100, 1e-4);  // every element within the absolute bound of 0
  const std::vector<double> zeros(100, 0.0);
  const CompareResult r = compare_out(zeros, want);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.actual_all_zero);
  EXPECT_EQ(r.num_out_of_bounds, 0);
  // Expected-empty cases accept exact zeros and reject anything else.
  CompareOptions empty;
  empty.expect_empty = true;
  EXPECT_TRUE(compare_out(zeros, zeros, empty).ok);
  std::vector<double> almost = zeros;
  almost[3] = 1e-6;
  EXPECT_FALSE(compare_out(almost, zeros, empty).ok);
  EXPECT_FALSE(compare_out(zeros, zeros).ok) << "an unexpected all-zero reference is reported";
}

TEST(Comparator, CosineCatchesDriftWithinElementBounds) {
  const std::vector<double> want = reference_values(4096, 4);
  std::vector<double> got = want;
  Rng rng(5);
  for (size_t n = 0; n < got.size(); ++n) {
    const double bound = 1e-3 + (2.0 / 128.0) * std::fabs(want[n]);
    got[n] += (rng.unit() < 0.5 ? -0.9 : 0.9) * bound;
  }
  const CompareResult r = compare_out(got, want);
  EXPECT_EQ(r.num_out_of_bounds, 0);
  EXPECT_GT(r.cos_distance, 5e-6);
  EXPECT_FALSE(r.ok);
}

TEST(Comparator, RejectsSizeMismatch) {
  EXPECT_FALSE(compare_out({1.0, 2.0}, {1.0, 2.0, 3.0}).ok);
}

}  // namespace
}  // namespace flashmla::test
