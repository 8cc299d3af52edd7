// dense_decode reference against the brute force, over dtypes, GQA, causal
// masks, lengths at page boundaries, page sizes, padded strides and FP8.
#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reference/check.h"

namespace flashmla::test {
namespace {

struct DenseCase {
  std::string name;
  DenseDecodeConfig config;
  bool allow_empty = false;
  // gtest prints the case by name, not as bytes.
  friend void PrintTo(const DenseCase& c, std::ostream* os) { *os << c.name; }
};

DenseDecodeConfig dense(int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv, std::vector<int32_t> seqlens) {
  DenseDecodeConfig c;
  c.b = b;
  c.s_q = s_q;
  c.h_q = h_q;
  c.h_kv = h_kv;
  c.seqlens = std::move(seqlens);
  c.softmax_scale = 3.0f;  // logits with a spread, so the softmax is not flat
  return c;
}

std::vector<DenseCase> dense_cases() {
  std::vector<DenseCase> cases;
  auto add = [&](std::string name, DenseDecodeConfig c, bool allow_empty = false) {
    c.seed = cases.size() + 101;
    cases.push_back({std::move(name), c, allow_empty});
  };
  add("Bf16Lengths", dense(5, 1, 3, 1, {0, 1, 63, 64, 65}), true);
  add("Fp16Lengths", [] { auto c = dense(5, 1, 4, 1, {65, 0, 1, 64, 63}); c.dtype = DType::kFloat16; return c; }(), true);
  add("GqaTwoKvHeads", dense(2, 1, 4, 2, {70, 130}));
  add("GqaFourKvHeadsFp16", [] { auto c = dense(2, 2, 8, 4, {33, 129}); c.dtype = DType::kFloat16; return c; }());
  add("GqaEveryHeadOwnKv", dense(1, 1, 3, 3, {40}));
  add("CausalSq2", [] { auto c = dense(3, 2, 2, 1, {1, 64, 65}); c.causal = true; return c; }(), true);
  add("CausalSq3ShortRequests", [] { auto c = dense(3, 3, 2, 1, {1, 2, 3}); c.causal = true; return c; }(), true);
  add("CausalSq4", [] { auto c = dense(2, 4, 3, 1, {63, 200}); c.causal = true; return c; }());
  add("CausalSq1Ignored", [] { auto c = dense(2, 1, 2, 1, {10, 64}); c.causal = true; return c; }());
  add("NonCausalSq4", dense(2, 4, 2, 1, {5, 66}));
  add("PageSize2", [] { auto c = dense(2, 2, 2, 1, {7, 12}); c.page_block_size = 2; return c; }());
  add("PageSize53", [] { auto c = dense(3, 1, 2, 1, {53, 54, 160}); c.page_block_size = 53; return c; }());
  add("PaddedStrides", [] { auto c = dense(3, 2, 3, 1, {17, 64, 100}); c.pad = 5; return c; }());
  add("PaddedStridesGqaCausal", [] { auto c = dense(2, 3, 4, 2, {3, 90}); c.pad = 3; c.causal = true; return c; }());
  add("Fp8V32", [] { auto c = dense(3, 1, 4, 1, {1, 64, 130}); c.kv_format = KVFormat::kFp8V32; return c; }());
  add("Fp8V32CausalPadded", [] {
    auto c = dense(2, 2, 2, 1, {65, 20});
    c.kv_format = KVFormat::kFp8V32; c.causal = true; c.pad = 2; c.page_block_size = 53; return c; }());
  add("SmallHeadDims", [] { auto c = dense(2, 1, 2, 1, {9, 70}); c.d_qk = 64; c.d_v = 32; return c; }());
  add("DefaultScaleRandomLengths", [] { auto c = dense(4, 1, 2, 1, {}); c.softmax_scale = 0.0f; return c; }(), true);
  return cases;
}

class DenseDecodeVsBrute : public ::testing::TestWithParam<DenseCase> {};

TEST_P(DenseDecodeVsBrute, Matches) {
  const DenseDecodeProblem problem = make_dense_decode_problem(GetParam().config);
  HostOutputs outputs = problem.make_outputs();
  const Status status = ref::dense_decode(problem.host_args(outputs));
  ASSERT_TRUE(status.ok()) << status.what();
  expect_matches_brute(problem, brute_dense_decode(problem), outputs, GetParam().allow_empty);
}

INSTANTIATE_TEST_SUITE_P(Cases, DenseDecodeVsBrute, ::testing::ValuesIn(dense_cases()),
                         [](const auto& info) { return info.param.name; });

TEST(DenseDecode, EmptyRowsBothLseConventions) {
  DenseDecodeConfig c = dense(3, 2, 2, 1, {0, 1, 5});
  c.causal = true;  // request 1, token 0 sees nothing
  const DenseDecodeProblem problem = make_dense_decode_problem(c);
  for (ref::EmptyLse convention : {ref::EmptyLse::kNegInf, ref::EmptyLse::kPosInf}) {
    HostOutputs outputs = problem.make_outputs();
    ASSERT_TRUE(ref::dense_decode(problem.host_args(outputs), {convention}).ok());
    const std::vector<double> out = gather(problem.out_view(), outputs.out.data());
    const std::vector<double> lse = gather(problem.lse_view(), outputs.lse.data());
    const double empty_lse = convention == ref::EmptyLse::kNegInf ? -INFINITY : INFINITY;
    auto lse_at = [&](int64_t i, int64_t h, int64_t j) { return lse[size_t((i * 2 + h) * 2 + j)]; };
    for (int64_t h = 0; h < 2; ++h) {
      EXPECT_EQ(lse_at(0, h, 0), empty_lse);
      EXPECT_EQ(lse_at(0, h, 1), empty_lse);
      EXPECT_EQ(lse_at(1, h, 0), empty_lse);
      EXPECT_TRUE(std::isfinite(lse_at(1, h, 1)));
      EXPECT_TRUE(std::isfinite(lse_at(2, h, 0)));
    }
    for (int64_t n = 0; n < 2 * 2 * 512; ++n) ASSERT_EQ(out[size_t(n)], 0.0) << n;  // request 0
    for (int64_t n = 0; n < 2 * 512; ++n) ASSERT_EQ(out[size_t(2 * 2 * 512 + n)], 0.0);  // request 1, token 0
    // Bits are exactly zero, not -0 or NaN.
    EXPECT_EQ(outputs.out[0], 0);
  }
}

// Replaces every NaN element of the pool (page tails, unused pages, row
// padding) with a large finite value: the result must not change by a bit.
TEST(DenseDecode, PoisonedSlotsNeverChangeTheResult) {
  for (KVFormat format : {KVFormat::kNative, KVFormat::kFp8V32}) {
    DenseDecodeConfig c = dense(3, 2, 2, 1, {1, 63, 65});
    c.kv_format = format;
    c.pad = 2;
    DenseDecodeProblem problem = make_dense_decode_problem(c);
    HostOutputs before = problem.make_outputs();
    ASSERT_TRUE(ref::dense_decode(problem.host_args(before)).ok());
    int64_t replaced = 0;
    if (format == KVFormat::kNative) {
      for (size_t k = 0; k + 1 < problem.kv.size(); k += 2) {
        if (problem.kv[k] == 0xFF && problem.kv[k + 1] == 0xFF) {
          problem.kv[k] = 0x7F;  // bf16 0x7F7F, about 3.4e38
          problem.kv[k + 1] = 0x7F;
          ++replaced;
        }
      }
    } else {
      replaced = replace_unused_fp8_bytes(problem.kv, format, problem.args.page_block_size,
                                          problem.args.num_blocks, problem.args.stride_kv_block);
    }
    ASSERT_GT(replaced, 0);
    HostOutputs after = problem.make_outputs();
    ASSERT_TRUE(ref::dense_decode(problem.host_args(after)).ok());
    EXPECT_EQ(before.out, after.out);
    EXPECT_EQ(gather(problem.lse_view(), before.lse.data()), gather(problem.lse_view(), after.lse.data()));
  }
}

TEST(DenseDecode, RejectsNullAndBadHeads) {
  const DenseDecodeProblem problem = make_dense_decode_problem(dense(1, 1, 4, 1, {8}));
  HostOutputs outputs = problem.make_outputs();
  DenseDecodeArgs a = problem.host_args(outputs);
  a.q = nullptr;
  Status status = ref::dense_decode(a);
  EXPECT_EQ(status.code, StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.what()).find("q"), std::string::npos);
  a = problem.host_args(outputs);
  a.h_kv = 3;
  status = ref::dense_decode(a);
  EXPECT_EQ(status.code, StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.what()).find("h_kv"), std::string::npos);
  a = problem.host_args(outputs);
  a.b = 0;  // legal, writes nothing
  EXPECT_TRUE(ref::dense_decode(a).ok());
  EXPECT_TRUE(std::isnan(outputs.lse[0]));
}

TEST(DenseDecode, GarbageLengthsAreMaskedNotTrusted) {
  // A negative length is empty; a length past the block table's width is
  // cut to it, and the garbage page ids it then meets are masked.
  DenseDecodeProblem problem = make_dense_decode_problem(dense(2, 1, 2, 1, {64, 10}));
  HostOutputs before = problem.make_outputs();
  ASSERT_TRUE(ref::dense_decode(problem.host_args(before)).ok());
  problem.cache_seqlens[0] = 1000000;
  problem.cache_seqlens[1] = -5;
  HostOutputs after = problem.make_outputs();
  ASSERT_TRUE(ref::dense_decode(problem.host_args(after)).ok());
  const std::vector<double> lse_before = gather(problem.lse_view(), before.lse.data());
  const std::vector<double> lse_after = gather(problem.lse_view(), after.lse.data());
  EXPECT_EQ(lse_after[0], lse_before[0]);
  EXPECT_EQ(lse_after[1], lse_before[1]);
  EXPECT_EQ(lse_after[2], -INFINITY);
  EXPECT_EQ(lse_after[3], -INFINITY);
}

}  // namespace
}  // namespace flashmla::test
