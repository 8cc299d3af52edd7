// sparse_prefill on the GPU against the fp64 CPU reference over a curated
// grid (issue 6, item 2): every listed s_q {1, 62, 213, 1024}, s_kv {1, 64,
// 1000, 32768}, h_q {1, 16, 32, 64, 128}, topk {64, 128, 512, 2048} and d_qk
// {576, 512} appears, with all-invalid index rows, topk_length 0 / partial /
// full (and absent), sinks -inf / finite / +inf, duplicated indices, NaN in
// every KV row no valid position selects, padded strides, and a sharp and
// the default softmax scale, without a cartesian product. out, max_logits
// and lse are all checked (sparse_prefill_case.h).
//
// SparsePrefillGridCases (CPU) checks the grid itself without a GPU:
// coverage, the reference budget, that validate() accepts every case, and
// that the inputs are as adversarial as claimed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "sparse_prefill/sparse_prefill_case.h"

namespace flashmla::test {
namespace {

std::vector<PrefillCase> grid_cases() {
  std::vector<PrefillCase> cases;
  auto add = [&](std::string name, SparsePrefillConfig c) {
    c.seed = 7000 + cases.size();
    cases.push_back({std::move(name), std::move(c)});
  };
  auto with = [](SparsePrefillConfig c, auto&& edit) {
    edit(c);
    return c;
  };

  // s_q = 1.
  add("Sq1Skv1H1Topk64D576", prefill_config(1, 1, 1, 64, 576));  // every valid index is 0: all duplicates
  add("Sq1Skv32768H128Topk2048D512_Sinks",
      with(prefill_config(1, 32768, 128, 2048, 512), [](auto& c) { c.attn_sink = mixed_sinks(128); }));
  add("Sq1Skv64H16Topk512D576_DefaultScale",
      with(prefill_config(1, 64, 16, 512, 576), [](auto& c) { c.softmax_scale = 0.0f; }));
  add("Sq1Skv1000H64Topk64D512_AllInvalidWithSinks", with(prefill_config(1, 1000, 64, 64, 512), [](auto& c) {
        c.invalid_fraction = 1.0;
        c.attn_sink = mixed_sinks(64);
      }));

  // s_q = 62.
  add("Sq62Skv64H16Topk64D576_Lengths0PartialFull", with(prefill_config(62, 64, 16, 64, 576), [](auto& c) {
        c.with_topk_length = true;
        c.topk_length = mixed_topk_lengths(62, 64, 1);
      }));
  add("Sq62Skv32768H128Topk2048D576", prefill_config(62, 32768, 128, 2048, 576));
  add("Sq62Skv1000H128Topk64D576_AllInvalid",
      with(prefill_config(62, 1000, 128, 64, 576), [](auto& c) { c.invalid_fraction = 1.0; }));
  add("Sq62Skv1000H64Topk512D512_PaddedStridesSinks", with(prefill_config(62, 1000, 64, 512, 512), [](auto& c) {
        c.pad = 8;  // 16 bytes: keeps every bf16 stride TMA-aligned
        c.attn_sink = mixed_sinks(64);
      }));
  add("Sq62Skv1000H1Topk2048D576_AllLengthsZero", with(prefill_config(62, 1000, 1, 2048, 576), [](auto& c) {
        c.with_topk_length = true;
        c.topk_length.assign(62, 0);
      }));

  // s_q = 213.
  add("Sq213Skv1000H32Topk128D512_SinksPartialLengths", with(prefill_config(213, 1000, 32, 128, 512), [](auto& c) {
        c.with_topk_length = true;
        c.topk_length = mixed_topk_lengths(213, 128, 2);
        c.attn_sink = mixed_sinks(32);
      }));
  add("Sq213Skv64H1Topk2048D512_HeavyDuplicates", with(prefill_config(213, 64, 1, 2048, 512), [](auto& c) {
        c.duplicate_fraction = 0.4;  // and s_kv = 64 < topk: every valid index repeats
      }));
  add("Sq213Skv32768H64Topk512D576_Lengths0PartialFull", with(prefill_config(213, 32768, 64, 512, 576), [](auto& c) {
        c.with_topk_length = true;
        c.topk_length = mixed_topk_lengths(213, 512, 3);
      }));
  add("Sq213Skv1000H128Topk128D576_Sinks",
      with(prefill_config(213, 1000, 128, 128, 576), [](auto& c) { c.attn_sink = mixed_sinks(128); }));

  // s_q = 1024.
  add("Sq1024Skv1000H16Topk128D512_SharpScale",
      with(prefill_config(1024, 1000, 16, 128, 512), [](auto& c) { c.softmax_scale = kSharpScale; }));
  add("Sq1024Skv32768H64Topk128D576_Lengths", with(prefill_config(1024, 32768, 64, 128, 576), [](auto& c) {
        c.with_topk_length = true;
        c.topk_length = mixed_topk_lengths(1024, 128, 4);
      }));
  return cases;
}

// Upper bound of the reference's multiply-adds: every position valid.
double reference_work(const SparsePrefillConfig& c) {
  return double(c.s_q) * double(c.h_q) * double(c.topk) * double(c.d_qk + c.d_v);
}

class GpuSparsePrefillGrid : public ::testing::TestWithParam<PrefillCase> {};

TEST_P(GpuSparsePrefillGrid, MatchesReference) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_prefill_case(GetParam().config));
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuSparsePrefillGrid, ::testing::ValuesIn(grid_cases()),
                         [](const auto& info) { return info.param.name; });

// ----------------------------------------------------------------------------
// CPU checks of the grid itself (run without a GPU).

TEST(SparsePrefillGridCases, CoverEveryListedValue) {
  std::set<int64_t> s_qs, s_kvs, h_qs, topks, d_qks;
  bool all_invalid = false, lengths_absent = false, length_zero = false, length_partial = false,
       length_full = false, sink_neg_inf = false, sink_finite = false, sink_pos_inf = false,
       duplicates = false, padded = false, sharp = false, default_scale = false;
  for (const PrefillCase& c : grid_cases()) {
    const SparsePrefillConfig& k = c.config;
    s_qs.insert(k.s_q);
    s_kvs.insert(k.s_kv);
    h_qs.insert(k.h_q);
    topks.insert(k.topk);
    d_qks.insert(k.d_qk);
    EXPECT_EQ(k.d_v, 512) << c.name;
    EXPECT_EQ(k.h_kv, 1) << c.name;
    all_invalid |= k.invalid_fraction >= 1.0;
    if (!k.with_topk_length) {
      lengths_absent = true;
    } else {
      EXPECT_EQ(int64_t(k.topk_length.size()), k.s_q) << c.name << ": explicit lengths expected";
      for (int32_t len : k.topk_length) {
        length_zero |= len == 0;
        length_partial |= len > 0 && len < k.topk;
        length_full |= len == k.topk;
      }
    }
    if (!k.attn_sink.empty()) EXPECT_EQ(int64_t(k.attn_sink.size()), k.h_q) << c.name;
    for (float sink : k.attn_sink) {
      sink_neg_inf |= sink == -std::numeric_limits<float>::infinity();
      sink_pos_inf |= sink == std::numeric_limits<float>::infinity();
      sink_finite |= std::isfinite(sink);
    }
    duplicates |= k.duplicate_fraction >= 0.3 || (k.s_kv < k.topk && k.invalid_fraction < 1.0);
    padded |= k.pad > 0;
    sharp |= k.softmax_scale >= kSharpScale;
    default_scale |= k.softmax_scale == 0.0f;
    // Every other case has a softmax that is not flat.
    if (k.softmax_scale != 0.0f) EXPECT_GE(k.softmax_scale, kSpreadScale) << c.name;
  }
  for (int64_t v : {1, 62, 213, 1024}) EXPECT_TRUE(s_qs.count(v)) << "s_q = " << v;
  for (int64_t v : {1, 64, 1000, 32768}) EXPECT_TRUE(s_kvs.count(v)) << "s_kv = " << v;
  for (int64_t v : {1, 16, 32, 64, 128}) EXPECT_TRUE(h_qs.count(v)) << "h_q = " << v;
  for (int64_t v : {64, 128, 512, 2048}) EXPECT_TRUE(topks.count(v)) << "topk = " << v;
  for (int64_t v : {576, 512}) EXPECT_TRUE(d_qks.count(v)) << "d_qk = " << v;
  EXPECT_TRUE(all_invalid) << "no case with every index invalid";
  EXPECT_TRUE(lengths_absent) << "no case without topk_length";
  EXPECT_TRUE(length_zero) << "no topk_length 0";
  EXPECT_TRUE(length_partial) << "no partial topk_length";
  EXPECT_TRUE(length_full) << "no topk_length = topk";
  EXPECT_TRUE(sink_neg_inf) << "no -inf sink";
  EXPECT_TRUE(sink_finite) << "no finite sink";
  EXPECT_TRUE(sink_pos_inf) << "no +inf sink";
  EXPECT_TRUE(duplicates) << "no case dominated by duplicated indices";
  EXPECT_TRUE(padded) << "no padded strides";
  EXPECT_TRUE(sharp) << "no sharp softmax";
  EXPECT_TRUE(default_scale) << "no default scale";
}

// The fp64 reference of the whole grid stays around the budget
// (~30 s on 16 cores): at most 1.5e11 multiply-adds even if every position
// were valid. s_q = 1 cases run on one thread (the reference parallelizes
// over query tokens), so they are kept below 1e9.
TEST(SparsePrefillGridCases, ReferenceWorkWithinBudget) {
  double total = 0.0;
  for (const PrefillCase& c : grid_cases()) {
    total += reference_work(c.config);
    if (c.config.s_q == 1) EXPECT_LE(reference_work(c.config), 1e9) << c.name;
  }
  EXPECT_LE(total, 1.5e11);
}

// Every case, at a few query tokens (strides and alignment do not depend on
// s_q), is a valid input that validate() accepts, so a GPU failure is the
// kernel's and not the test's; and its inputs are adversarial as claimed:
// every KV row that no valid position selects is all NaN, every selected
// one finite; index rows hold zoo values unless the case has none.
TEST(SparsePrefillGridCases, EveryCaseValidatesAndHasNaNInUnselectedRows) {
  for (const PrefillCase& c : grid_cases()) {
    SparsePrefillConfig small = c.config;
    small.s_q = std::min<int64_t>(small.s_q, 8);
    if (small.with_topk_length) small.topk_length.resize(size_t(small.s_q));
    const SparsePrefillProblem problem = make_sparse_prefill_problem(small);
    HostOutputs outputs = problem.make_outputs();
    const Status status = validate(problem.host_args(outputs));
    EXPECT_TRUE(status.ok()) << c.name << ": " << to_string(status.code) << ": " << status.what();
    EXPECT_EQ(workspace_size(problem.host_args(outputs)), 0) << c.name << ": the tests assume no scratch";

    const SparsePrefillArgs& a = problem.args;
    std::vector<char> selected(size_t(a.s_kv), 0);
    int64_t invalid_positions = 0;
    for (int64_t j = 0; j < a.s_q; ++j) {
      const int64_t length =
          problem.topk_length.empty() ? a.topk : std::clamp<int64_t>(problem.topk_length[size_t(j)], 0, a.topk);
      const int32_t* row = problem.indices.data() + j * a.stride_indices_s;
      for (int64_t k = 0; k < a.topk; ++k) {
        const bool valid = row[k] >= 0 && row[k] < a.s_kv;
        invalid_positions += !valid;
        if (valid && k < length) selected[size_t(row[k])] = 1;
      }
    }
    int64_t wrong_rows = 0;
    for (int64_t t = 0; t < a.s_kv; ++t) {
      const uint16_t* row = problem.kv.data() + t * a.stride_kv_s;
      bool all_nan = true, all_finite = true;
      for (int64_t d = 0; d < a.d_qk; ++d) {
        const float v = ref::bf16_to_float(row[d]);
        all_nan &= std::isnan(v);
        all_finite &= std::isfinite(v);
      }
      wrong_rows += selected[size_t(t)] ? !all_finite : !all_nan;
    }
    EXPECT_EQ(wrong_rows, 0) << c.name << ": KV rows neither (selected and finite) nor (unselected and NaN)";
    if (small.invalid_fraction > 0.0) EXPECT_GT(invalid_positions, 0) << c.name << ": no invalid index";
  }
}

}  // namespace
}  // namespace flashmla::test
