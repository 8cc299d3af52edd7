// sparse_decode on the GPU against the fp64 CPU reference over a curated grid
// (issue 5, item 4): every listed value of b, s_q, h_q, page size, topk and
// format appears, with and without the extra cache in both formats, every
// topk_length class (0, partial, full), every sink class (-inf, finite,
// +inf), all-invalid rows, heavy duplicates and padded strides, without the
// cost of a cartesian product. Inputs come from the adversarial generator:
// NaN in every byte of every FP8 token that no valid position selects (the
// tokens reached only by zoo values or by positions past topk_length
// included), zoo values (INT32_MIN, -2, -1, capacity, capacity + 1,
// INT32_MAX) and duplicates in the index rows, NaN-poisoned out/lse.
//
// SparseDecodeGridCases (CPU) checks the grid itself without a GPU: coverage,
// the reference budget, and that validate() accepts every case.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "sparse_decode/sparse_case.h"

namespace flashmla::test::sd {
namespace {

constexpr KVFormat kV32 = KVFormat::kFp8V32;
constexpr KVFormat kModel1 = KVFormat::kFp8Model1;
constexpr float kInf = std::numeric_limits<float>::infinity();

// Total (row, key) pairs the grid's fp64 reference may evaluate: a few
// seconds on 16 cores, leaving the ~30 s budget to the other suites' cases.
constexpr int64_t kGridReferenceBudget = 30'000'000;

std::vector<SparseCase> grid_cases() {
  std::vector<SparseCase> cases;
  auto add = [&](std::string name, SparseDecodeConfig c, bool main_all_invalid = false) {
    c.seed = 7000 + cases.size();
    cases.push_back({std::move(name), std::move(c), main_all_invalid});
  };
  auto with = [](SparseDecodeConfig c, auto&& edit) {
    edit(c);
    return c;
  };
  const std::vector<float> mixed_sinks = {-kInf, 0.5f, kInf, 6.0f};

  add("V32_B1Sq1H1K64P2", sparse_config(kV32, 1, 1, 1, 64, 2));
  add("V32_B4Sq2H8K2048P53_LengthsFullZeroPartial_SinksMixed",
      with(sparse_config(kV32, 4, 2, 8, 2048, 53), [&](auto& c) {
        c.with_topk_length = true;
        c.topk_length = {2048, 0, 1000, 65};
        c.attn_sink = sink_pattern(c.h_q, mixed_sinks);
      }));
  add("Model1_B4Sq3H16K128P69_Extra64P2_ExtraLengths", with(sparse_config(kModel1, 4, 3, 16, 128, 69), [](auto& c) {
        c.extra_topk = 64;
        c.extra_page_block_size = 2;
        c.with_extra_topk_length = true;
        c.extra_topk_length = {64, 0, 13, 64};
      }));
  add("V32_B74Sq1H32K128P256_RandomLengths", with(sparse_config(kV32, 74, 1, 32, 128, 256), [](auto& c) {
        c.with_topk_length = true;
      }));
  add("Model1_B74Sq2H64K64P64_Extra128P53_RandomExtraLengths",
      with(sparse_config(kModel1, 74, 2, 64, 64, 64), [](auto& c) {
        c.extra_topk = 128;
        c.extra_page_block_size = 53;
        c.with_extra_topk_length = true;
      }));
  add("V32_B321Sq1H128K64P64", sparse_config(kV32, 321, 1, 128, 64, 64));
  add("Model1_B321Sq1H8K128P2_RandomLengths_FiniteSinks", with(sparse_config(kModel1, 321, 1, 8, 128, 2), [](auto& c) {
        c.with_topk_length = true;
        c.attn_sink = sink_pattern(c.h_q, {2.0f, -1.0f, 5.5f});
      }));
  add("V32_B4Sq1H128K2048P64_ExplicitFullLengths_Extra128P256",
      with(sparse_config(kV32, 4, 1, 128, 2048, 64), [](auto& c) {
        c.with_topk_length = true;
        c.topk_length = {2048, 2048, 2048, 2048};
        c.extra_topk = 128;
        c.extra_page_block_size = 256;
      }));
  add("Model1_B1Sq3H128K2048P256_SinksMixed", with(sparse_config(kModel1, 1, 3, 128, 2048, 256), [&](auto& c) {
        c.attn_sink = sink_pattern(c.h_q, mixed_sinks);
      }));
  add("V32_B4Sq2H64K2048P69_AllInvalid", with(sparse_config(kV32, 4, 2, 64, 2048, 69), [](auto& c) {
        c.invalid_fraction = 1.0;
      }));
  add("Model1_B4Sq1H32K128P53_MainAllInvalid_Extra64P64", with(sparse_config(kModel1, 4, 1, 32, 128, 53), [](auto& c) {
        c.extra_topk = 64;
        c.extra_page_block_size = 64;
      }),
      /*main_all_invalid=*/true);
  add("V32_B4Sq3H16K64P2_AllLengthsZero_SinksMixed", with(sparse_config(kV32, 4, 3, 16, 64, 2), [&](auto& c) {
        c.with_topk_length = true;
        c.topk_length = {0, 0, 0, 0};
        c.attn_sink = sink_pattern(c.h_q, mixed_sinks);
      }));
  add("Model1_B4Sq2H1K64P64_AllInvalid_Extra64P2_AllInvalid_Sink",
      with(sparse_config(kModel1, 4, 2, 1, 64, 64), [](auto& c) {
        c.invalid_fraction = 1.0;
        c.extra_topk = 64;
        c.extra_page_block_size = 2;
        c.attn_sink = {1.5f};
      }));
  add("V32_B4Sq1H64K2048P64_SharpScale", with(sparse_config(kV32, 4, 1, 64, 2048, 64), [](auto& c) {
        c.softmax_scale = kSharpScale;
      }));
  add("Model1_B4Sq1H16K128P64_DefaultScale", with(sparse_config(kModel1, 4, 1, 16, 128, 64), [](auto& c) {
        c.softmax_scale = 0.0f;
      }));
  add("V32_B4Sq2H16K128P53_PaddedStrides_Extra64P69", with(sparse_config(kV32, 4, 2, 16, 128, 53), [](auto& c) {
        c.pad = 8;  // 16 bytes of q/out rows; 8 ints of indices; 128 bytes of pages
        c.extra_topk = 64;
        c.extra_page_block_size = 69;
        c.with_topk_length = true;
      }));
  add("Model1_B4Sq2H32K128P64_PaddedStrides_SinksMixed", with(sparse_config(kModel1, 4, 2, 32, 128, 64), [&](auto& c) {
        c.pad = 8;
        c.attn_sink = sink_pattern(c.h_q, mixed_sinks);
      }));
  add("V32_B74Sq3H8K128P53_HeavyDuplicates", with(sparse_config(kV32, 74, 3, 8, 128, 53), [](auto& c) {
        c.invalid_fraction = 0.3;
        c.duplicate_fraction = 0.5;
      }));
  add("Model1_B74Sq1H128K64P256_HeavyDuplicates_Extra64P64",
      with(sparse_config(kModel1, 74, 1, 128, 64, 256), [](auto& c) {
        c.duplicate_fraction = 0.6;
        c.extra_topk = 64;
        c.extra_page_block_size = 64;
      }));
  add("Model1_B1Sq2H1K2048P2", sparse_config(kModel1, 1, 2, 1, 2048, 2));
  add("V32_B321Sq2H16K128P69_RandomLengths_Extra64P2_RandomExtraLengths",
      with(sparse_config(kV32, 321, 2, 16, 128, 69), [](auto& c) {
        c.with_topk_length = true;
        c.extra_topk = 64;
        c.extra_page_block_size = 2;
        c.with_extra_topk_length = true;
      }));
  add("Model1_B4Sq1H128K128P64_TopkLengthZeroAndFull", with(sparse_config(kModel1, 4, 1, 128, 128, 64), [](auto& c) {
        c.with_topk_length = true;
        c.topk_length = {0, 128, 77, 1};
      }));
  return cases;
}

class GpuSparseDecodeGrid : public ::testing::TestWithParam<SparseCase> {};

TEST_P(GpuSparseDecodeGrid, MatchesReference) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_sparse_problem(make_case_problem(GetParam())));
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuSparseDecodeGrid, ::testing::ValuesIn(grid_cases()),
                         [](const auto& info) { return info.param.name; });

// ----------------------------------------------------------------------------
// CPU checks of the grid itself (run without a GPU).

TEST(SparseDecodeGridCases, CoverEveryListedValue) {
  std::set<int64_t> bs, s_qs, h_qs, pages, topks;
  std::set<std::pair<KVFormat, bool>> format_extra;
  std::set<KVFormat> format_padded;
  bool length_zero = false, length_partial = false, length_full = false;
  bool sink_neg_inf = false, sink_finite = false, sink_pos_inf = false;
  bool all_invalid = false, main_invalid_extra_valid = false, duplicates = false;
  bool sharp = false, default_scale = false;
  std::set<std::string> names;
  for (const SparseCase& c : grid_cases()) {
    const SparseDecodeConfig& k = c.config;
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate name " << c.name;
    bs.insert(k.b);
    s_qs.insert(k.s_q);
    h_qs.insert(k.h_q);
    pages.insert(k.page_block_size);
    topks.insert(k.topk);
    if (k.extra_topk > 0) {
      pages.insert(k.extra_page_block_size);
      topks.insert(k.extra_topk);
    }
    format_extra.insert({k.kv_format, k.extra_topk > 0});
    if (k.pad > 0) format_padded.insert(k.kv_format);
    for (int32_t len : k.topk_length) {
      length_zero |= len == 0;
      length_partial |= len > 0 && len < k.topk;
      length_full |= len == k.topk;
    }
    for (float s : k.attn_sink) {
      sink_neg_inf |= s == -kInf;
      sink_pos_inf |= s == kInf;
      sink_finite |= std::isfinite(s);
    }
    all_invalid |= k.invalid_fraction >= 1.0;
    main_invalid_extra_valid |= c.main_all_invalid && k.extra_topk > 0 && k.invalid_fraction < 1.0;
    duplicates |= k.duplicate_fraction >= 0.5;
    sharp |= k.softmax_scale == kSharpScale;
    default_scale |= k.softmax_scale == 0.0f;
    if (!k.topk_length.empty()) EXPECT_EQ(int64_t(k.topk_length.size()), k.b) << c.name;
    if (!k.extra_topk_length.empty()) EXPECT_EQ(int64_t(k.extra_topk_length.size()), k.b) << c.name;
    if (!k.attn_sink.empty()) EXPECT_EQ(int64_t(k.attn_sink.size()), k.h_q) << c.name;
  }
  for (int64_t b : {1, 4, 74, 321}) EXPECT_TRUE(bs.count(b)) << "b = " << b;
  for (int64_t s_q : {1, 2, 3}) EXPECT_TRUE(s_qs.count(s_q)) << "s_q = " << s_q;
  for (int64_t h_q : {1, 8, 16, 32, 64, 128}) EXPECT_TRUE(h_qs.count(h_q)) << "h_q = " << h_q;
  for (int64_t p : {2, 53, 64, 69, 256}) EXPECT_TRUE(pages.count(p)) << "page size " << p;
  for (int64_t t : {64, 128, 2048}) EXPECT_TRUE(topks.count(t)) << "topk " << t;
  for (KVFormat f : {kV32, kModel1}) {
    EXPECT_TRUE(format_extra.count({f, false})) << to_string(f) << " without the extra cache";
    EXPECT_TRUE(format_extra.count({f, true})) << to_string(f) << " with the extra cache";
    EXPECT_TRUE(format_padded.count(f)) << to_string(f) << " with padded strides";
  }
  EXPECT_TRUE(length_zero) << "topk_length 0";
  EXPECT_TRUE(length_partial) << "a partial topk_length";
  EXPECT_TRUE(length_full) << "topk_length = topk";
  EXPECT_TRUE(sink_neg_inf) << "sink -inf";
  EXPECT_TRUE(sink_finite) << "a finite sink";
  EXPECT_TRUE(sink_pos_inf) << "sink +inf";
  EXPECT_TRUE(all_invalid) << "all indices invalid";
  EXPECT_TRUE(main_invalid_extra_valid) << "main cache all invalid, extra cache valid";
  EXPECT_TRUE(duplicates) << "heavy duplicates";
  EXPECT_TRUE(sharp) << "a sharp softmax";
  EXPECT_TRUE(default_scale) << "the default scale";
}

TEST(SparseDecodeGridCases, ReferenceWorkWithinBudget) {
  int64_t total = 0;
  for (const SparseCase& c : grid_cases()) total += reference_cost(c.config);
  EXPECT_LE(total, kGridReferenceBudget) << "the grid's fp64 reference would evaluate " << total
                                         << " (row, key) pairs";
}

// Every case is a valid, supported input (shapes, strides, alignment), so a
// GPU failure is the kernel's and not the test's. b is capped to keep this
// cheap; strides and alignment do not depend on it.
TEST(SparseDecodeGridCases, EveryCaseValidates) {
  for (const SparseCase& c : grid_cases()) {
    SparseCase small = c;
    SparseDecodeConfig& k = small.config;
    k.b = std::min<int64_t>(k.b, 6);
    if (!k.topk_length.empty()) k.topk_length.resize(size_t(k.b), int32_t(k.topk));
    if (!k.extra_topk_length.empty()) k.extra_topk_length.resize(size_t(k.b), int32_t(k.extra_topk));
    const SparseDecodeProblem problem = make_case_problem(small);
    HostOutputs outputs = problem.make_outputs();
    const SparseDecodeArgs args = problem.host_args(outputs);
    expect_plan_and_call_validate(args, c.name);
    EXPECT_EQ(args.stride_kv_block % 16, 0) << c.name;
  }
}

}  // namespace
}  // namespace flashmla::test::sd
