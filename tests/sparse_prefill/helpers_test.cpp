// CPU checks of the GPU tests' own machinery (no GPU needed): the result
// check accepts the reference itself and catches each kind of kernel bug it
// is there for; the sampled-row machinery of the large test reproduces the
// full reference bit for bit; the fast large-problem generator is as
// adversarial as the shared one.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "flashmla_ref/numeric.h"
#include "sparse_prefill/sparse_prefill_case.h"

namespace flashmla::test {
namespace {

// Every failure message `fn` reports (intercepted, so the test itself does
// not fail); a check may legitimately report more than one.
template <typename Fn>
std::vector<std::string> failures_of(Fn&& fn) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    fn();
  }
  std::vector<std::string> messages;
  for (int i = 0; i < results.size(); ++i) messages.push_back(results.GetTestPartResult(i).message());
  return messages;
}

::testing::AssertionResult caught(const std::vector<std::string>& messages, const std::string& text) {
  for (const std::string& m : messages) {
    if (m.find(text) != std::string::npos) return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no failure mentioning \"" << text << "\" among " << messages.size()
                                       << " failures";
}

#define EXPECT_CAUGHT(statement, text) EXPECT_TRUE(caught(failures_of([&] { statement; }), text))

class SparsePrefillHelpers : public ::testing::Test {
 protected:
  void SetUp() override {
    // Token 0 has topk_length 0 (empty); padded strides; head 2 has a +inf
    // sink (mixed_sinks), head 0 a -inf one.
    SparsePrefillConfig c = prefill_config(6, 200, 8, 64, 576);
    c.with_topk_length = true;
    c.topk_length = {0, 64, 10, 1, 63, 30};
    c.attn_sink = mixed_sinks(8);
    c.pad = 8;
    problem_ = make_sparse_prefill_problem(c);
    ASSERT_NO_FATAL_FAILURE(reference_outputs(problem_, &expected_));
    got_ = expected_;
  }
  size_t out_at(int64_t j, int64_t h, int64_t d) const {
    return size_t(j * problem_.args.stride_out_s + h * problem_.args.stride_out_h + d);
  }
  size_t max_at(int64_t j, int64_t h) const { return size_t(j * problem_.args.stride_max_logits_s + h); }
  size_t lse_at(int64_t j, int64_t h) const { return size_t(j * problem_.args.stride_lse_s + h); }

  SparsePrefillProblem problem_;
  HostOutputs expected_, got_;
};

TEST_F(SparsePrefillHelpers, FixtureHasTheRowKindsItNeeds) {
  ASSERT_EQ(problem_.attn_sink[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(expected_.lse[lse_at(0, 1)], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(expected_.max_logits[max_at(0, 1)], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isfinite(expected_.lse[lse_at(1, 1)]));
  EXPECT_TRUE(std::isfinite(expected_.lse[lse_at(1, 2)]));  // the sink never enters lse
  EXPECT_EQ(ref::bf16_to_float(expected_.out[out_at(1, 2, 0)]), 0.0f);
}

TEST_F(SparsePrefillHelpers, ReferenceMatchesItself) {
  expect_matches_reference(problem_, got_, expected_, "self");
  expect_bitwise_equal(got_, expected_, "self");
  expect_rows_plausible(problem_, got_, "self");
}

TEST_F(SparsePrefillHelpers, NegativeZeroInAnEmptyRowIsCaught) {
  got_.out[out_at(0, 3, 5)] = 0x8000;
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"), "not exactly +0");
}

TEST_F(SparsePrefillHelpers, TinyValueUnderAnInfiniteSinkIsCaught) {
  got_.out[out_at(1, 2, 9)] = 0x0001;  // a denormal: within the element tolerance
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"), "+inf sink");
}

TEST_F(SparsePrefillHelpers, FiniteStatsInAnEmptyRowAreCaught) {
  got_.max_logits[max_at(0, 4)] = 0.0f;
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"), "not -inf");
}

TEST_F(SparsePrefillHelpers, WrongMaxLogitsIsCaught) {
  got_.max_logits[max_at(4, 1)] += 0.01f;
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"), "max_logits");
}

TEST_F(SparsePrefillHelpers, WrongLseIsCaught) {
  got_.lse[lse_at(5, 7)] += 0.01f;
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"), "x: lse");
}

TEST_F(SparsePrefillHelpers, WrongOutValueIsCaught) {
  uint16_t& v = got_.out[out_at(1, 1, 7)];
  v = ref::float_to_bf16(ref::bf16_to_float(v) + 0.05f);
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"), "out of bounds");
}

TEST_F(SparsePrefillHelpers, UnwrittenElementIsCaught) {
  got_.out[out_at(4, 3, 511)] = kNaN16;
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"), "NaN/inf position");
}

TEST_F(SparsePrefillHelpers, WrittenPaddingIsCaught) {
  got_.out[out_at(2, 0, problem_.args.d_v)] = 0;
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"), "out padding was written");
  got_ = expected_;
  got_.max_logits[max_at(2, problem_.args.h_q)] = 0.0f;
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"),
                          "max_logits padding was written");
  got_ = expected_;
  got_.lse[lse_at(3, problem_.args.h_q)] = 0.0f;
  EXPECT_CAUGHT(expect_matches_reference(problem_, got_, expected_, "x"), "lse padding was written");
}

TEST_F(SparsePrefillHelpers, BitwiseComparisonSeesOneUlpOfMaxLogits) {
  HostOutputs other = got_;
  float& m = other.max_logits[max_at(3, 3)];
  uint32_t bits;
  std::memcpy(&bits, &m, 4);
  ++bits;
  std::memcpy(&m, &bits, 4);
  EXPECT_CAUGHT(expect_bitwise_equal(got_, other, "x"), "max_logits differs in 1");
}

TEST_F(SparsePrefillHelpers, PlausibilityCatchesNaNAndBadStats) {
  got_.out[out_at(1, 1, 3)] = kNaN16;
  EXPECT_CAUGHT(expect_rows_plausible(problem_, got_, "x"), "implausible out");
  got_ = expected_;
  got_.lse[lse_at(4, 0)] = got_.max_logits[max_at(4, 0)] - 1.0f;  // lse < max_logits
  EXPECT_CAUGHT(expect_rows_plausible(problem_, got_, "x"), "implausible max_logits/lse");
  got_ = expected_;
  got_.out[out_at(0, 0, 0)] = ref::float_to_bf16(0.25f);  // a value in an empty row
  EXPECT_CAUGHT(expect_rows_plausible(problem_, got_, "x"), "empty row");
}

// The reference on a compact copy of some rows equals, bit for bit, those
// rows of the reference on the whole problem (rows out of order, first and
// last included, the empty row 0 among them).
TEST_F(SparsePrefillHelpers, RowSubsetReproducesTheFullReference) {
  const RowSubset subset = make_row_subset(problem_, {5, 0, 3, 2});
  ASSERT_EQ(subset.compact.args.s_q, 4);
  HostOutputs sampled;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(subset, problem_, &sampled));
  expect_bitwise_equal(gather_rows(problem_, subset, expected_), sampled, "subset vs full");
  expect_matches_reference(subset.compact, gather_rows(problem_, subset, expected_), sampled, "subset");
}

TEST(SparsePrefillLargeMachinery, SampleRowsCoverEndsAndTwoToThe16) {
  const std::vector<int64_t> rows = sample_rows(70000, 240, 3);
  ASSERT_TRUE(std::is_sorted(rows.begin(), rows.end()));
  EXPECT_EQ(std::set<int64_t>(rows.begin(), rows.end()).size(), rows.size());
  EXPECT_GE(rows.size(), 200u);
  EXPECT_LE(rows.size(), 260u);
  const std::set<int64_t> set(rows.begin(), rows.end());
  for (int64_t r : {0, 69999, 32767, 32768, 65535, 65536}) EXPECT_TRUE(set.count(r)) << r;
  for (int64_t r : sample_rows(5, 240, 3)) {
    EXPECT_GE(r, 0);
    EXPECT_LT(r, 5);
  }
  EXPECT_EQ(sample_rows(5, 240, 3).size(), 5u);
}

// The fast generator, at a small size: validate() accepts it, KV rows are
// NaN exactly where no valid position selects them, lengths include 0 and
// topk, and the reference's result on it passes the plausibility check.
TEST(SparsePrefillLargeMachinery, FastGeneratorIsValidAndAdversarial) {
  const SparsePrefillProblem problem = make_large_prefill_problem(300, 5000, 4, 128, 576, 11);
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(problem, &expected));
  HostOutputs outputs = problem.make_outputs();
  const Status status = validate(problem.host_args(outputs));
  EXPECT_TRUE(status.ok()) << status.what();
  const SparsePrefillArgs& a = problem.args;
  std::vector<char> selected(size_t(a.s_kv), 0);
  for (int64_t j = 0; j < a.s_q; ++j) {
    for (int64_t k = 0; k < problem.topk_length[size_t(j)]; ++k) {
      const int32_t index = problem.indices[size_t(j * a.stride_indices_s + k)];
      if (index >= 0 && index < a.s_kv) selected[size_t(index)] = 1;
    }
  }
  int64_t wrong = 0, unselected = 0;
  for (int64_t t = 0; t < a.s_kv; ++t) {
    const float v = ref::bf16_to_float(problem.kv[size_t(t * a.stride_kv_s)]);
    wrong += selected[size_t(t)] ? !std::isfinite(v) : !std::isnan(v);
    unselected += !selected[size_t(t)];
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(unselected, 0);
  const std::set<int32_t> lengths(problem.topk_length.begin(), problem.topk_length.end());
  EXPECT_TRUE(lengths.count(0));
  EXPECT_TRUE(lengths.count(128));
  expect_rows_plausible(problem, expected, "reference");
}

}  // namespace
}  // namespace flashmla::test
