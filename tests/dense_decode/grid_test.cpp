// dense_decode on the GPU against the fp64 CPU reference over a curated grid
// (issue item 5): every listed value of b, s_q, lengths, h_q, h_kv, dtype and
// causal appears, every (dtype, causal, s_q) and every valid (h_q, h_kv)
// pair appears, without the cost of a cartesian product. Inputs come from
// the adversarial generator: NaN in every KV slot that is not a key (page
// tails, unused and spare pages), garbage page ids (INT32_MAX, -1,
// INT32_MIN, num_blocks, ...) in unused block-table slots, pages in random
// order, NaN-poisoned out/lse.
//
// DenseDecodeGridCases (CPU) checks the grid itself here, without a GPU:
// coverage, and that validate() accepts every case.
#include <climits>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "dense_decode/dense_case.h"

namespace flashmla::test {
namespace {

constexpr DType kBf16 = DType::kBFloat16;
constexpr DType kFp16 = DType::kFloat16;
constexpr bool kCausal = true;
constexpr bool kNonCausal = false;

std::vector<DenseCase> grid_cases() {
  std::vector<DenseCase> cases;
  auto add = [&](std::string name, DenseDecodeConfig c) {
    c.seed = 1000 + cases.size();
    cases.push_back({std::move(name), std::move(c)});
  };
  const std::vector<int32_t> boundaries = {0, 1, 63, 64, 65, 140};

  // h_q 1 / 3 / 9: the smallest tiles; the 65536-key rows live here (small b, h_q).
  add("B2Sq1H1Kv1Bf16_Len65536And1", dense_config(2, 1, 1, 1, {65536, 1}, kBf16, kNonCausal));
  add("B1Sq2H3Kv1Fp16Causal_Len65536", dense_config(1, 2, 3, 1, {65536}, kFp16, kCausal));
  add("B1Sq4H1Kv1Bf16Causal_Len65536", dense_config(1, 4, 1, 1, {65536}, kBf16, kCausal));
  add("B6Sq1H1Kv1Fp16_MixWith65536", dense_config(6, 1, 1, 1, {0, 65536, 1, 4096, 63, 64}, kFp16, kNonCausal));
  add("B6Sq4H9Kv1Bf16Causal_Boundaries", dense_config(6, 4, 9, 1, boundaries, kBf16, kCausal));
  add("B133Sq4H3Kv1Fp16Causal_Mixed", dense_config(133, 4, 3, 1, mixed_lengths(133, 0, 600, 11), kFp16, kCausal));
  // Causal s_q = 4 with lengths 1 and 2: tokens that see nothing (empty rows)
  // next to tokens that see one or two keys.
  add("B2Sq4H3Kv1Fp16Causal_EmptyLeadingTokens", dense_config(2, 4, 3, 1, {1, 2}, kFp16, kCausal));

  // h_q 16: every h_kv.
  add("B7Sq1H16Kv1Bf16_AllBoundariesAnd4096",
      dense_config(7, 1, 16, 1, {0, 1, 63, 64, 65, 140, 4096}, kBf16, kNonCausal));
  add("B6Sq1H16Kv1Fp16_MixWith4096", dense_config(6, 1, 16, 1, {140, 4096, 0, 65, 1, 64}, kFp16, kNonCausal));
  add("B6Sq4H16Kv1Fp16_Boundaries", dense_config(6, 4, 16, 1, {65, 64, 63, 140, 1, 0}, kFp16, kNonCausal));
  add("B2Sq4H16Kv2Fp16_Len4096And63", dense_config(2, 4, 16, 2, {4096, 63}, kFp16, kNonCausal));
  add("B64Sq2H16Kv8Bf16Causal_Mixed", dense_config(64, 2, 16, 8, mixed_lengths(64, 0, 300, 12), kBf16, kCausal));
  add("B6Sq2H16Kv1Fp16_AllEmpty", dense_config(6, 2, 16, 1, {0, 0, 0, 0, 0, 0}, kFp16, kNonCausal));

  // h_q 63 / 64: a group just under and exactly one 64-row tile.
  add("B6Sq2H63Kv1Bf16_MixWith4096", dense_config(6, 2, 63, 1, {63, 64, 65, 0, 1, 4096}, kBf16, kNonCausal));
  // s_q = 1: causal must be ignored.
  add("B64Sq1H64Kv1Bf16Causal_Mixed", dense_config(64, 1, 64, 1, mixed_lengths(64, 0, 300, 13), kBf16, kCausal));
  add("B2Sq4H64Kv2Fp16Causal_Len65And140", dense_config(2, 4, 64, 2, {65, 140}, kFp16, kCausal));
  add("B6Sq1H64Kv8Fp16Causal_Mix", dense_config(6, 1, 64, 8, {1, 140, 64, 0, 4096, 63}, kFp16, kCausal));
  add("B6Sq2H64Kv1Bf16_SharpSoftmax", [&] {
    auto c = dense_config(6, 2, 64, 1, {4096, 140, 65, 1, 0, 64}, kBf16, kNonCausal);
    c.softmax_scale = kSharpScale;
    return c;
  }());

  // h_q 126 / 128: two head tiles (the second partial for 126).
  add("B133Sq1H126Kv1Bf16_Mixed", dense_config(133, 1, 126, 1, mixed_lengths(133, 0, 600, 14), kBf16, kNonCausal));
  add("B6Sq2H126Kv2Fp16Causal_MixWith4096",
      dense_config(6, 2, 126, 2, {4096, 65, 1, 0, 63, 140}, kFp16, kCausal));
  add("B133Sq2H128Kv1Bf16Causal_Mixed",
      dense_config(133, 2, 128, 1, mixed_lengths(133, 0, 400, 15), kBf16, kCausal));
  add("B1Sq4H128Kv2Bf16_Len4096", dense_config(1, 4, 128, 2, {4096}, kBf16, kNonCausal));
  add("B64Sq1H128Kv8Fp16_Mixed", dense_config(64, 1, 128, 8, mixed_lengths(64, 0, 300, 16), kFp16, kNonCausal));
  // The DeepSeek decode shape: 64 requests of 1000..3000 keys, 128 heads.
  add("B64Sq1H128Kv1Bf16_Len1000To3000",
      dense_config(64, 1, 128, 1, mixed_lengths(64, 1000, 3000, 17, false), kBf16, kNonCausal));
  add("B2Sq2H128Kv1Fp16_SharpSoftmax_Len4096And65", [&] {
    auto c = dense_config(2, 2, 128, 1, {4096, 65}, kFp16, kNonCausal);
    c.softmax_scale = kSharpScale;
    return c;
  }());

  // Padded strides everywhere (q, kv rows/pages, block table, out, lse):
  // NaN in the padding must not be read, out/lse padding must not be written.
  add("B6Sq2H9Kv1Bf16Causal_PaddedStrides", [&] {
    auto c = dense_config(6, 2, 9, 1, {140, 0, 1, 65, 64, 300}, kBf16, kCausal);
    c.pad = 8;  // 16 bytes: keeps every stride TMA-aligned
    return c;
  }());
  add("B2Sq1H128Kv2Fp16_PaddedStrides", [&] {
    auto c = dense_config(2, 1, 128, 2, {200, 63}, kFp16, kNonCausal);
    c.pad = 8;
    return c;
  }());
  // The default scale 1/sqrt(576), as engines call it (flat softmax).
  // d_qk 512 (MODEL1: V is all of K, eight k-tiles): the 2-CTA cluster
  // (h_q 128), the 64-head tile, packed small-head tiles, causal, fp16.
  auto dqk512 = [](DenseDecodeConfig c) {
    c.d_qk = 512;
    return c;
  };
  add("B6Sq1H128Kv1Bf16Dqk512_MixWith4096",
      dqk512(dense_config(6, 1, 128, 1, {4096, 0, 65, 1, 140, 63}, kBf16, kNonCausal)));
  add("B64Sq1H128Kv1Fp16Dqk512_Mixed",
      dqk512(dense_config(64, 1, 128, 1, mixed_lengths(64, 0, 300, 18), kFp16, kNonCausal)));
  add("B2Sq4H64Kv2Bf16Dqk512Causal_Len4096And63",
      dqk512(dense_config(2, 4, 64, 2, {4096, 63}, kBf16, kCausal)));
  add("B6Sq2H16Kv1Fp16Dqk512Causal_Boundaries", dqk512(dense_config(6, 2, 16, 1, boundaries, kFp16, kCausal)));
  add("B6Sq1H16Kv1Bf16_DefaultScale", [&] {
    auto c = dense_config(6, 1, 16, 1, boundaries, kBf16, kNonCausal);
    c.softmax_scale = 0.0f;
    return c;
  }());
  return cases;
}

class GpuDenseDecodeGrid : public ::testing::TestWithParam<DenseCase> {};

TEST_P(GpuDenseDecodeGrid, MatchesReference) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_dense_case(GetParam().config));
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuDenseDecodeGrid, ::testing::ValuesIn(grid_cases()),
                         [](const auto& info) { return info.param.name; });

// Lengths that are device garbage: negative lengths are empty, a length past
// the block table's width is cut to it and the garbage ids it then meets are
// masked (the reference's semantics, spec section 6). Nothing faults.
TEST(GpuDenseDecode, GarbageLengthsAreMaskedNotTrusted) {
  FLASHMLA_REQUIRE_GPU();
  DenseDecodeConfig c = dense_config(5, 2, 16, 2, {64, 10, 130, 5, 1}, kBf16, kCausal);
  DenseDecodeProblem problem = make_dense_decode_problem(c);
  problem.cache_seqlens[1] = -5;
  problem.cache_seqlens[2] = 1000000;  // past max_blocks_per_seq * 64
  problem.cache_seqlens[3] = INT32_MIN;
  problem.cache_seqlens[4] = INT32_MAX;
  ASSERT_NO_FATAL_FAILURE(run_dense_problem(problem));
}

// b = 0 is legal: plan and decode return ok and launch nothing.
TEST(GpuDenseDecode, EmptyBatchIsANoOp) {
  FLASHMLA_REQUIRE_GPU();
  DenseDecodeArgs args = make_dense_decode_problem(dense_config(0, 1, 16, 1, {})).args;
  args.num_blocks = 0;  // no pool either: nothing may be read, so null pointers are fine
  PlanDecodeArgs plan;
  plan.kind = DecodeKind::kDense;
  plan.b = 0;
  plan.s_q = 1;
  plan.h_q = 16;
  plan.h_kv = 1;
  plan.num_sms = device_sm_count();
  Stream stream;
  ASSERT_TRUE(stream.ok());
  const Status planned = run(plan, nullptr, 0, stream.get());
  EXPECT_TRUE(planned.ok()) << planned.what();
  args.schedule = describe_schedule(plan);
  const Status decoded = run(args, nullptr, 0, stream.get());
  EXPECT_TRUE(decoded.ok()) << decoded.what();
  FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.get()));
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
}

// ----------------------------------------------------------------------------
// CPU checks of the grid itself (run without a GPU).

TEST(DenseDecodeGridCases, CoverEveryListedValueAndPair) {
  std::set<int64_t> bs, s_qs, h_qs, h_kvs;
  std::set<int32_t> lengths;
  std::set<std::tuple<DType, bool, int64_t>> dtype_causal_sq;
  std::set<std::pair<int64_t, int64_t>> heads;
  bool has_mixture = false;
  for (const DenseCase& c : grid_cases()) {
    const DenseDecodeConfig& k = c.config;
    bs.insert(k.b);
    s_qs.insert(k.s_q);
    h_qs.insert(k.h_q);
    h_kvs.insert(k.h_kv);
    dtype_causal_sq.insert({k.dtype, k.causal, k.s_q});
    heads.insert({k.h_q, k.h_kv});
    std::set<int32_t> distinct(k.seqlens.begin(), k.seqlens.end());
    lengths.insert(distinct.begin(), distinct.end());
    has_mixture |= distinct.count(0) && distinct.count(1) && distinct.count(63) && distinct.count(64) &&
                   distinct.count(65) && distinct.count(140) && distinct.count(4096);
    // Long rows only with small b and h_q (the reference is fp64).
    if (distinct.count(65536)) {
      EXPECT_LE(k.b, 6) << c.name;
      EXPECT_LE(k.h_q, 3) << c.name;
    }
  }
  for (int64_t b : {1, 2, 6, 64, 133}) EXPECT_TRUE(bs.count(b)) << "b = " << b;
  for (int64_t s_q : {1, 2, 4}) EXPECT_TRUE(s_qs.count(s_q)) << "s_q = " << s_q;
  for (int32_t len : {0, 1, 63, 64, 65, 140, 4096, 65536}) EXPECT_TRUE(lengths.count(len)) << "length " << len;
  EXPECT_TRUE(has_mixture) << "no batch mixing 0, 1, 63, 64, 65, 140 and 4096";
  for (DType dtype : {kBf16, kFp16}) {
    for (bool causal : {false, true}) {
      for (int64_t s_q : {1, 2, 4}) {
        EXPECT_TRUE(dtype_causal_sq.count({dtype, causal, s_q}))
            << to_string(dtype) << (causal ? " causal" : " non-causal") << " s_q " << s_q;
      }
    }
  }
  for (int64_t h_q : {1, 3, 9, 16, 63, 64, 126, 128}) {
    for (int64_t h_kv : {1, 2, 8}) {
      if (h_q % h_kv == 0) EXPECT_TRUE(heads.count({h_q, h_kv})) << "h_q " << h_q << ", h_kv " << h_kv;
    }
  }
}

TEST(DenseDecodeGridCases, EveryCaseValidates) {
  for (const DenseCase& c : grid_cases()) expect_case_validates(c);
}

}  // namespace
}  // namespace flashmla::test
