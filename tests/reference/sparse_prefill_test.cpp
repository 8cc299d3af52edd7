// sparse_prefill reference against the brute force, including max_logits.
#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reference/check.h"

namespace flashmla::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct PrefillCase {
  std::string name;
  SparsePrefillConfig config;
  bool allow_empty = false;
  // gtest prints the case by name, not as bytes.
  friend void PrintTo(const PrefillCase& c, std::ostream* os) { *os << c.name; }
};

SparsePrefillConfig prefill(int64_t s_q, int64_t s_kv, int64_t h_q, int64_t topk) {
  SparsePrefillConfig c;
  c.s_q = s_q;
  c.s_kv = s_kv;
  c.h_q = h_q;
  c.topk = topk;
  c.softmax_scale = 3.0f;
  return c;
}

std::vector<PrefillCase> prefill_cases() {
  std::vector<PrefillCase> cases;
  auto add = [&](std::string name, SparsePrefillConfig c, bool allow_empty = false) {
    c.seed = cases.size() + 301;
    cases.push_back({std::move(name), c, allow_empty});
  };
  add("Basic", prefill(3, 200, 3, 64));
  add("Topk128", prefill(2, 300, 2, 128));
  add("TopkLength", [] { auto c = prefill(4, 100, 2, 64); c.with_topk_length = true; c.topk_length = {0, 1, 63, 64}; return c; }(), true);
  add("Sinks", [] { auto c = prefill(2, 100, 3, 64); c.attn_sink = {-kInf, 0.7f, kInf}; return c; }());
  add("AllInvalid", [] { auto c = prefill(2, 50, 2, 64); c.invalid_fraction = 1.0; return c; }(), true);
  add("Duplicates", [] { auto c = prefill(2, 20, 2, 64); c.duplicate_fraction = 0.5; return c; }());
  add("PaddedStrides", [] { auto c = prefill(3, 80, 2, 64); c.pad = 4; return c; }());
  add("Model1Dims", [] { auto c = prefill(2, 90, 2, 64); c.d_qk = 512; return c; }());
  add("TwoKvHeads", [] { auto c = prefill(2, 60, 4, 64); c.h_kv = 2; c.pad = 1; return c; }());
  return cases;
}

class SparsePrefillVsBrute : public ::testing::TestWithParam<PrefillCase> {};

TEST_P(SparsePrefillVsBrute, Matches) {
  const SparsePrefillProblem problem = make_sparse_prefill_problem(GetParam().config);
  HostOutputs outputs = problem.make_outputs();
  const Status status = ref::sparse_prefill(problem.host_args(outputs));
  ASSERT_TRUE(status.ok()) << status.what();
  const BruteResult brute = brute_sparse_prefill(problem);
  expect_matches_brute(problem, brute, outputs, GetParam().allow_empty);
  const std::vector<double> max_logits = gather(problem.max_logits_view(), outputs.max_logits.data());
  EXPECT_TRUE(compare_lse(max_logits, brute.max_logits,
                          tight_lse_options(problem.max_logits_view(), "max_logits")).assertion());
  EXPECT_EQ(written_padding(problem.max_logits_view(), outputs.max_logits.data()), 0);
}

INSTANTIATE_TEST_SUITE_P(Cases, SparsePrefillVsBrute, ::testing::ValuesIn(prefill_cases()),
                         [](const auto& info) { return info.param.name; });

TEST(SparsePrefill, EmptyRowsMaxLogitsAndLse) {
  SparsePrefillConfig c = prefill(2, 40, 2, 64);
  c.with_topk_length = true;
  c.topk_length = {0, 64};
  const SparsePrefillProblem problem = make_sparse_prefill_problem(c);
  for (ref::EmptyLse convention : {ref::EmptyLse::kNegInf, ref::EmptyLse::kPosInf}) {
    HostOutputs outputs = problem.make_outputs();
    ASSERT_TRUE(ref::sparse_prefill(problem.host_args(outputs), {convention}).ok());
    const auto max_logits = gather(problem.max_logits_view(), outputs.max_logits.data());
    const auto lse = gather(problem.lse_view(), outputs.lse.data());
    const auto out = gather(problem.out_view(), outputs.out.data());
    EXPECT_EQ(max_logits[0], -INFINITY);  // always -inf, whatever the lse convention
    EXPECT_EQ(lse[0], convention == ref::EmptyLse::kNegInf ? -INFINITY : INFINITY);
    EXPECT_TRUE(std::isfinite(max_logits[2]));
    EXPECT_LE(max_logits[2], lse[2]);  // lse = M + ln(L) with L >= 1
    for (int64_t n = 0; n < 2 * 512; ++n) ASSERT_EQ(out[size_t(n)], 0.0);
  }
}

TEST(SparsePrefill, PoisonedRowsNeverChangeTheResult) {
  SparsePrefillConfig c = prefill(3, 120, 2, 64);
  c.with_topk_length = true;
  c.pad = 2;
  SparsePrefillProblem problem = make_sparse_prefill_problem(c);
  HostOutputs before = problem.make_outputs();
  ASSERT_TRUE(ref::sparse_prefill(problem.host_args(before)).ok());
  int64_t replaced = 0;
  for (uint16_t& v : problem.kv) {
    if (v == kNaN16) {
      v = 0x7F7F;
      ++replaced;
    }
  }
  ASSERT_GT(replaced, 0);
  HostOutputs after = problem.make_outputs();
  ASSERT_TRUE(ref::sparse_prefill(problem.host_args(after)).ok());
  EXPECT_EQ(before.out, after.out);
  EXPECT_EQ(gather(problem.lse_view(), before.lse.data()), gather(problem.lse_view(), after.lse.data()));
}

}  // namespace
}  // namespace flashmla::test
