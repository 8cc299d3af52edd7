// sparse_decode reference against the brute force: V32 and MODEL1, page
// sizes, topk_length, the extra cache, sinks, invalid indices, duplicates.
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

struct SparseCase {
  std::string name;
  SparseDecodeConfig config;
  bool allow_empty = false;
  // gtest prints the case by name, not as bytes.
  friend void PrintTo(const SparseCase& c, std::ostream* os) { *os << c.name; }
};

SparseDecodeConfig sparse(KVFormat format, int64_t b, int64_t s_q, int64_t h_q, int64_t topk,
                          int64_t page_block_size) {
  SparseDecodeConfig c;
  c.kv_format = format;
  c.b = b;
  c.s_q = s_q;
  c.h_q = h_q;
  c.topk = topk;
  c.page_block_size = page_block_size;
  c.softmax_scale = 3.0f;
  return c;
}

std::vector<SparseCase> sparse_cases() {
  const KVFormat v32 = KVFormat::kFp8V32, m1 = KVFormat::kFp8Model1;
  std::vector<SparseCase> cases;
  auto add = [&](std::string name, SparseDecodeConfig c, bool allow_empty = false) {
    c.seed = cases.size() + 201;
    cases.push_back({std::move(name), c, allow_empty});
  };
  add("V32Page64", sparse(v32, 2, 1, 3, 64, 64));
  add("V32Page2", sparse(v32, 2, 2, 2, 64, 2));
  add("V32Page53", sparse(v32, 3, 1, 2, 128, 53));
  add("Model1Page64", sparse(m1, 2, 1, 3, 64, 64));
  add("Model1Page2", sparse(m1, 2, 1, 2, 64, 2));
  add("Model1Page53", sparse(m1, 2, 3, 2, 128, 53));
  add("V32TopkLengthPartial", [&] { auto c = sparse(v32, 3, 2, 2, 128, 64); c.topk_length = {1, 65, 100}; c.with_topk_length = true; return c; }());
  add("Model1TopkLengthZeroAndFull", [&] { auto c = sparse(m1, 3, 1, 2, 64, 64); c.topk_length = {0, 64, 63}; c.with_topk_length = true; return c; }(), true);
  add("V32TopkLengthGarbage", [&] { auto c = sparse(v32, 2, 1, 2, 64, 64); c.topk_length = {-7, 1000}; c.with_topk_length = true; return c; }(), true);
  add("V32Extra", [&] { auto c = sparse(v32, 2, 2, 2, 64, 64); c.extra_topk = 64; c.extra_page_block_size = 53; return c; }());
  add("Model1ExtraWithLengths", [&] {
    auto c = sparse(m1, 3, 1, 2, 64, 2);
    c.extra_topk = 128; c.extra_page_block_size = 64; c.with_topk_length = true; c.with_extra_topk_length = true;
    c.topk_length = {0, 10, 64}; c.extra_topk_length = {5, 0, 128}; return c; }());
  add("V32SinksFinite", [&] { auto c = sparse(v32, 2, 1, 4, 64, 64); c.attn_sink = {-1.0f, 0.0f, 2.5f, 10.0f}; return c; }());
  add("Model1SinksMixed", [&] { auto c = sparse(m1, 2, 1, 3, 64, 53); c.attn_sink = {-kInf, 1.0f, kInf}; return c; }());
  add("V32AllInvalid", [&] { auto c = sparse(v32, 2, 1, 2, 64, 64); c.invalid_fraction = 1.0; return c; }(), true);
  add("V32ManyDuplicates", [&] { auto c = sparse(v32, 2, 1, 2, 128, 64); c.duplicate_fraction = 0.6; c.invalid_fraction = 0.1; return c; }());
  add("Model1PaddedStrides", [&] { auto c = sparse(m1, 2, 2, 3, 64, 53); c.pad = 3; c.extra_topk = 64; return c; }());
  add("V32PaddedSinksExtra", [&] {
    auto c = sparse(v32, 2, 2, 2, 64, 2); c.pad = 1; c.extra_topk = 64; c.extra_page_block_size = 2;
    c.attn_sink = {0.5f, -0.5f}; return c; }());
  return cases;
}

class SparseDecodeVsBrute : public ::testing::TestWithParam<SparseCase> {};

TEST_P(SparseDecodeVsBrute, Matches) {
  const SparseDecodeProblem problem = make_sparse_decode_problem(GetParam().config);
  HostOutputs outputs = problem.make_outputs();
  const Status status = ref::sparse_decode(problem.host_args(outputs));
  ASSERT_TRUE(status.ok()) << status.what();
  expect_matches_brute(problem, brute_sparse_decode(problem), outputs, GetParam().allow_empty);
}

INSTANTIATE_TEST_SUITE_P(Cases, SparseDecodeVsBrute, ::testing::ValuesIn(sparse_cases()),
                         [](const auto& info) { return info.param.name; });

// Runs the reference and returns (logical out, logical lse).
std::pair<std::vector<double>, std::vector<double>> run(const SparseDecodeProblem& problem,
                                                        ref::Options options = {}) {
  HostOutputs outputs = problem.make_outputs();
  EXPECT_TRUE(ref::sparse_decode(problem.host_args(outputs), options).ok());
  return {gather(problem.out_view(), outputs.out.data()), gather(problem.lse_view(), outputs.lse.data())};
}

TEST(SparseDecode, SinkMinusInfHasNoEffectAndPlusInfGivesZero) {
  SparseDecodeProblem problem = make_sparse_decode_problem(sparse(KVFormat::kFp8V32, 2, 1, 2, 64, 64));
  const auto [out_plain, lse_plain] = run(problem);
  problem.attn_sink = {-kInf, -kInf};
  const auto [out_minus, lse_minus] = run(problem);
  EXPECT_EQ(out_minus, out_plain);
  EXPECT_EQ(lse_minus, lse_plain);
  problem.attn_sink = {kInf, kInf};
  const auto [out_plus, lse_plus] = run(problem);
  for (double v : out_plus) ASSERT_EQ(v, 0.0);
  EXPECT_EQ(lse_plus, lse_plain);  // the sink never enters lse
  problem.attn_sink = {0.0f, 0.0f};
  const auto [out_zero, lse_zero] = run(problem);
  EXPECT_EQ(lse_zero, lse_plain);
  // A finite sink shrinks every output by L / (L + e^sink) = 1 / (1 + e^-lse).
  const double shrink = 1.0 / (1.0 + std::exp(-lse_plain[0]));
  EXPECT_NEAR(out_zero[0], out_plain[0] * shrink, 1e-2 * std::fabs(out_plain[0]) + 1e-6);
}

TEST(SparseDecode, EmptyRowsBothLseConventions) {
  SparseDecodeConfig c = sparse(KVFormat::kFp8Model1, 2, 1, 2, 64, 64);
  c.with_topk_length = true;
  c.topk_length = {0, 64};
  c.attn_sink = {1.0f, kInf};
  const SparseDecodeProblem problem = make_sparse_decode_problem(c);
  const auto [out_neg, lse_neg] = run(problem, {ref::EmptyLse::kNegInf});
  const auto [out_pos, lse_pos] = run(problem, {ref::EmptyLse::kPosInf});
  EXPECT_EQ(lse_neg[0], -INFINITY);
  EXPECT_EQ(lse_neg[1], -INFINITY);
  EXPECT_EQ(lse_pos[0], INFINITY);
  EXPECT_EQ(lse_pos[1], INFINITY);
  EXPECT_TRUE(std::isfinite(lse_neg[2]));
  EXPECT_EQ(lse_neg[2], lse_pos[2]);
  for (int64_t n = 0; n < 2 * 512; ++n) ASSERT_EQ(out_neg[size_t(n)], 0.0);
  EXPECT_EQ(out_neg, out_pos);
}

TEST(SparseDecode, DuplicatesAreAttendedTwice) {
  // Two copies of one key against one copy of another: weights 2:1.
  SparseDecodeConfig c = sparse(KVFormat::kFp8V32, 1, 1, 1, 64, 64);
  SparseDecodeProblem problem = make_sparse_decode_problem(c);
  const int64_t capacity = problem.args.num_blocks * 64;
  int32_t a = -1, b = -1;  // two distinct valid indices (their tokens are encoded)
  for (int64_t k = 0; k < 64; ++k) {
    const int32_t index = problem.indices[size_t(k)];
    if (index < 0 || index >= capacity) continue;
    if (a < 0) a = index;
    else if (b < 0 && index != a) b = index;
  }
  ASSERT_TRUE(a >= 0 && b >= 0);
  problem.indices.assign(problem.indices.size(), -1);
  problem.indices[0] = a;
  problem.indices[1] = b;
  const auto [out_single, lse_single] = run(problem);
  problem.indices[2] = a;
  const auto [out_double, lse_double] = run(problem);
  EXPECT_NE(lse_single[0], lse_double[0]);
  const std::vector<double> va = brute_decode_v32(problem.kv.data() + (a / 64) * problem.args.stride_kv_block + 656 * (a % 64));
  const std::vector<double> vb = brute_decode_v32(problem.kv.data() + (b / 64) * problem.args.stride_kv_block + 656 * (b % 64));
  std::vector<double> q(576);
  for (int d = 0; d < 576; ++d) q[size_t(d)] = brute_bf16(problem.q[size_t(d)]);
  double sa = 0, sb = 0;
  for (int d = 0; d < 576; ++d) {
    sa += q[size_t(d)] * va[size_t(d)];
    sb += q[size_t(d)] * vb[size_t(d)];
  }
  sa *= 3.0;
  sb *= 3.0;
  EXPECT_NEAR(lse_double[0], std::log(2 * std::exp(sa) + std::exp(sb)), 1e-5);
}

TEST(SparseDecode, PoisonedTokensNeverChangeTheResult) {
  for (KVFormat format : {KVFormat::kFp8V32, KVFormat::kFp8Model1}) {
    SparseDecodeConfig c = sparse(format, 2, 2, 2, 64, 53);
    c.with_topk_length = true;
    c.extra_topk = 64;
    SparseDecodeProblem problem = make_sparse_decode_problem(c);
    const auto [out_before, lse_before] = run(problem);
    const SparseDecodeArgs& a = problem.args;
    const int64_t replaced =
        replace_unused_fp8_bytes(problem.kv, format, a.page_block_size, a.num_blocks, a.stride_kv_block) +
        replace_unused_fp8_bytes(problem.extra_kv, format, a.extra_page_block_size, a.extra_num_blocks,
                                 a.stride_extra_kv_block);
    ASSERT_GT(replaced, 1000);
    const auto [out_after, lse_after] = run(problem);
    EXPECT_EQ(out_before, out_after);
    EXPECT_EQ(lse_before, lse_after);
  }
}

TEST(SparseDecode, RejectsWrongDimAndNull) {
  const SparseDecodeProblem problem = make_sparse_decode_problem(sparse(KVFormat::kFp8V32, 1, 1, 1, 64, 64));
  HostOutputs outputs = problem.make_outputs();
  SparseDecodeArgs a = problem.host_args(outputs);
  a.d_qk = 512;
  Status status = ref::sparse_decode(a);
  EXPECT_EQ(status.code, StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.what()).find("d_qk"), std::string::npos);
  a = problem.host_args(outputs);
  a.indices = nullptr;
  EXPECT_EQ(ref::sparse_decode(a).code, StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace flashmla::test
