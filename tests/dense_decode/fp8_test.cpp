// dense_decode over an FP8 cache in the V32 layout (spec section 3: 656-byte
// tokens, q and out bf16, h_kv 1) on the GPU against the fp64 CPU reference
// on the dequantized cache. The FP8 path runs the sparse decode kernels with
// positions read through the block table, so the grid visits each of their
// head classes: the small-head kernel (h_q <= 8, <= 16, <= 32), the 64-head
// kernel, and the 2-CTA crossover (65..128 heads), each with s_q 1..4,
// causal and not, boundary lengths, and one 65536-key request. The problem
// generator poisons every byte that is not a key's with NaN (page tails,
// spare pages, q and out padding) and puts garbage page ids in unused
// block-table slots.
//
// With s_q > 1 and fewer than 64 heads the query tokens are packed into the
// 64-head kernel's tiles (every head of up to 64 / h_q tokens, as the bf16
// kernel packs them): the causal rows of one tile see different key ranges,
// and a last tile may hold fewer tokens than the others. Split vs unsplit
// and determinism over an FP8 cache are in schedule_split_test.cpp.
//
// DenseDecodeFp8Cases (CPU) checks the grid's coverage and that validate()
// accepts every case.
#include <climits>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "dense_decode/dense_case.h"

namespace flashmla::test {
namespace {

constexpr bool kCausal = true;
constexpr bool kNonCausal = false;

DenseDecodeConfig fp8_config(int64_t b, int64_t s_q, int64_t h_q, std::vector<int32_t> seqlens, bool causal) {
  DenseDecodeConfig c = dense_config(b, s_q, h_q, 1, std::move(seqlens), DType::kBFloat16, causal);
  c.kv_format = KVFormat::kFp8V32;
  return c;
}

std::vector<DenseCase> fp8_cases() {
  std::vector<DenseCase> cases;
  auto add = [&](std::string name, DenseDecodeConfig c) {
    c.seed = 7000 + cases.size();
    cases.push_back({std::move(name), std::move(c)});
  };
  const std::vector<int32_t> boundaries = {0, 1, 63, 64, 65, 140};

  // The small-head kernel (N = 8, 16, 32).
  add("B2Sq1H1_Len65536And1", fp8_config(2, 1, 1, {65536, 1}, kNonCausal));
  add("B6Sq4H3Causal_Boundaries", fp8_config(6, 4, 3, boundaries, kCausal));
  add("B2Sq4H9Causal_EmptyLeadingTokens", fp8_config(2, 4, 9, {1, 2}, kCausal));
  add("B7Sq1H16_AllBoundariesAnd4096", fp8_config(7, 1, 16, {0, 1, 63, 64, 65, 140, 4096}, kNonCausal));
  add("B133Sq2H16Causal_Mixed", fp8_config(133, 2, 16, mixed_lengths(133, 0, 600, 31), kCausal));
  add("B6Sq2H32Causal_MixWith4096", fp8_config(6, 2, 32, {140, 4096, 0, 65, 1, 64}, kCausal));
  add("B1Sq4H16Causal_Len4096", fp8_config(1, 4, 16, {4096}, kCausal));
  add("B64Sq2H32_SharpSoftmax", [&] {
    auto c = fp8_config(64, 2, 32, mixed_lengths(64, 0, 300, 32), kNonCausal);
    c.softmax_scale = kSharpScale;
    return c;
  }());
  add("B6Sq2H16_AllEmpty", fp8_config(6, 2, 16, {0, 0, 0, 0, 0, 0}, kNonCausal));

  // Packed tiles whose last one is partial: h_q 24 (2 tokens a tile) with
  // s_q 3, h_q 5 (12 tokens a tile) with s_q 16.
  add("B5Sq3H24Causal_PartialTokenTile", fp8_config(5, 3, 24, {3, 64, 65, 200, 1}, kCausal));
  add("B3Sq16H5Causal_TwoTokenTiles", fp8_config(3, 16, 5, {16, 100, 700}, kCausal));
  add("B4Sq3H24_NonCausalPacked", fp8_config(4, 3, 24, {0, 64, 130, 7}, kNonCausal));

  // The 64-head kernel (33..64 heads).
  add("B6Sq2H33Causal_Boundaries", fp8_config(6, 2, 33, boundaries, kCausal));
  add("B64Sq1H64_Mixed", fp8_config(64, 1, 64, mixed_lengths(64, 0, 300, 33), kNonCausal));
  add("B2Sq4H64Causal_Len4096And65", fp8_config(2, 4, 64, {4096, 65}, kCausal));

  // The crossover (65..128 heads: the two head tiles of a query token as a
  // 2-CTA cluster, the second partial for 65 and 126).
  add("B2Sq1H65_Len4096And63", fp8_config(2, 1, 65, {4096, 63}, kNonCausal));
  add("B133Sq1H126_Mixed", fp8_config(133, 1, 126, mixed_lengths(133, 0, 600, 34), kNonCausal));
  add("B64Sq1H128_Len1000To3000", fp8_config(64, 1, 128, mixed_lengths(64, 1000, 3000, 35, false), kNonCausal));
  add("B6Sq2H128Causal_MixWith4096", fp8_config(6, 2, 128, {4096, 65, 1, 0, 63, 140}, kCausal));
  add("B2Sq2H128_SharpSoftmax_Len4096And65", [&] {
    auto c = fp8_config(2, 2, 128, {4096, 65}, kNonCausal);
    c.softmax_scale = kSharpScale;
    return c;
  }());

  // Padded strides (q, pages, block table, out, lse; tokens stay packed).
  add("B6Sq2H9Causal_PaddedStrides", [&] {
    auto c = fp8_config(6, 2, 9, {140, 0, 1, 65, 64, 300}, kCausal);
    c.pad = 8;
    return c;
  }());
  add("B2Sq1H128_PaddedStrides", [&] {
    auto c = fp8_config(2, 1, 128, {200, 63}, kNonCausal);
    c.pad = 8;
    return c;
  }());
  add("B6Sq1H16_DefaultScale", [&] {
    auto c = fp8_config(6, 1, 16, boundaries, kNonCausal);
    c.softmax_scale = 0.0f;
    return c;
  }());
  return cases;
}

class GpuDenseDecodeFp8 : public ::testing::TestWithParam<DenseCase> {};

TEST_P(GpuDenseDecodeFp8, MatchesReference) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_dense_case(GetParam().config));
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuDenseDecodeFp8, ::testing::ValuesIn(fp8_cases()),
                         [](const auto& info) { return info.param.name; });

// Device garbage in cache_seqlens: negative lengths are empty, a length past
// the block table's reach is cut to it and the garbage ids it then meets
// are masked (the reference's semantics); nothing faults.
TEST(GpuDenseDecodeFp8, GarbageLengthsAreMaskedNotTrusted) {
  FLASHMLA_REQUIRE_GPU();
  for (int64_t h_q : {16, 64, 128}) {
    SCOPED_TRACE("h_q " + std::to_string(h_q));
    DenseDecodeProblem problem = make_dense_decode_problem(fp8_config(5, 2, h_q, {64, 10, 130, 5, 1}, kCausal));
    problem.cache_seqlens[1] = -5;
    problem.cache_seqlens[2] = 1000000;  // past max_blocks_per_seq * 64
    problem.cache_seqlens[3] = INT32_MIN;
    problem.cache_seqlens[4] = INT32_MAX;
    ASSERT_NO_FATAL_FAILURE(run_dense_problem(problem));
  }
}

// ----------------------------------------------------------------------------
// CPU checks of the grid (no GPU needed).

TEST(DenseDecodeFp8Cases, CoverEveryKernelClass) {
  std::set<int64_t> classes, s_qs, bs;
  std::set<int32_t> lengths;
  std::set<int64_t> causal_classes;
  for (const DenseCase& c : fp8_cases()) {
    const DenseDecodeConfig& k = c.config;
    // The dispatcher's classes: small kernel N = 8 / 16 / 32, 64 heads, crossover.
    const int64_t cls = k.h_q <= 8 ? 8 : k.h_q <= 16 ? 16 : k.h_q <= 32 ? 32 : k.h_q <= 64 ? 64 : 128;
    classes.insert(cls);
    s_qs.insert(k.s_q);
    bs.insert(k.b);
    if (k.s_q > 1 && k.causal) causal_classes.insert(cls);
    lengths.insert(k.seqlens.begin(), k.seqlens.end());
  }
  for (int64_t cls : {8, 16, 32, 64, 128}) {
    EXPECT_TRUE(classes.count(cls)) << "h_q class " << cls;
    EXPECT_TRUE(causal_classes.count(cls)) << "causal s_q > 1 for class " << cls;
  }
  for (int64_t s_q : {1, 2, 4}) EXPECT_TRUE(s_qs.count(s_q)) << "s_q " << s_q;
  for (int64_t b : {1, 2, 6, 64, 133}) EXPECT_TRUE(bs.count(b)) << "b " << b;
  for (int32_t len : {0, 1, 63, 64, 65, 140, 4096, 65536}) EXPECT_TRUE(lengths.count(len)) << "length " << len;
}

TEST(DenseDecodeFp8Cases, EveryCaseValidates) {
  for (const DenseCase& c : fp8_cases()) expect_case_validates(c);
}

}  // namespace
}  // namespace flashmla::test
