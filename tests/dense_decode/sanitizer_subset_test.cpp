// A small subset for compute-sanitizer (each case runs in seconds under
// memcheck), covering the paths that could touch memory they should not:
// page tails and boundaries, garbage page ids and lengths, empty rows, split
// requests and their partials, padded strides, every tile shape class.
//
//   compute-sanitizer --tool memcheck build/tests/dense_decode/flashmla_dense_decode_tests \
//       --gtest_filter='GpuDenseDecodeSanitizer*'
//
// (also usable with --tool racecheck / initcheck / synccheck).
#include <climits>
#include <cstdint>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "dense_decode/dense_case.h"

namespace flashmla::test {
namespace {

DenseDecodeConfig small_case(int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv, std::vector<int32_t> lengths,
                             DType dtype, bool causal, uint64_t seed) {
  DenseDecodeConfig c = dense_config(b, s_q, h_q, h_kv, std::move(lengths), dtype, causal);
  c.seed = seed;
  return c;
}

TEST(GpuDenseDecodeSanitizer, PageBoundaries) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(
      run_dense_case(small_case(5, 1, 16, 1, {1, 63, 64, 65, 128}, DType::kBFloat16, false, 6001)));
}

TEST(GpuDenseDecodeSanitizer, CausalEmptyRowsGqaFp16) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_dense_case(small_case(3, 4, 16, 2, {0, 2, 130}, DType::kFloat16, true, 6002)));
}

TEST(GpuDenseDecodeSanitizer, SplitRequestDeviceSms) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_dense_case(small_case(2, 2, 9, 1, {3000, 5}, DType::kBFloat16, true, 6003)));
}

TEST(GpuDenseDecodeSanitizer, SameRequestOneWorker) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_dense_case(small_case(2, 2, 9, 1, {3000, 5}, DType::kBFloat16, true, 6003), 1));
}

TEST(GpuDenseDecodeSanitizer, TwoHeadTilesAndEightKvHeads) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_dense_case(small_case(2, 1, 126, 1, {70, 1}, DType::kBFloat16, false, 6004)));
  ASSERT_NO_FATAL_FAILURE(run_dense_case(small_case(2, 2, 128, 8, {129, 0}, DType::kFloat16, false, 6005)));
}

TEST(GpuDenseDecodeSanitizer, GarbageLengths) {
  FLASHMLA_REQUIRE_GPU();
  DenseDecodeProblem problem =
      make_dense_decode_problem(small_case(4, 1, 16, 1, {64, 10, 130, 5}, DType::kBFloat16, false, 6006));
  problem.cache_seqlens[1] = -5;
  problem.cache_seqlens[2] = 1000000;  // cut to the block table's width; its garbage ids masked
  problem.cache_seqlens[3] = INT32_MIN;
  ASSERT_NO_FATAL_FAILURE(run_dense_problem(problem));
}

TEST(GpuDenseDecodeSanitizer, PaddedStrides) {
  FLASHMLA_REQUIRE_GPU();
  DenseDecodeConfig c = small_case(3, 2, 9, 1, {65, 0, 200}, DType::kFloat16, true, 6007);
  c.pad = 8;
  ASSERT_NO_FATAL_FAILURE(run_dense_case(c));
}

TEST(GpuDenseDecodeSanitizer, AllRowsEmpty) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_dense_case(small_case(3, 2, 16, 1, {0, 0, 0}, DType::kBFloat16, false, 6008)));
}

// An FP8 (V32) cache: the sparse decode kernels reading positions through
// the block table, one case per kernel class (small-head, 64-head, the
// 128-head crossover split over workers), with garbage lengths.
DenseDecodeConfig fp8_case(int64_t b, int64_t s_q, int64_t h_q, std::vector<int32_t> lengths, bool causal,
                           uint64_t seed) {
  DenseDecodeConfig c = small_case(b, s_q, h_q, 1, std::move(lengths), DType::kBFloat16, causal, seed);
  c.kv_format = KVFormat::kFp8V32;
  return c;
}

TEST(GpuDenseDecodeSanitizer, Fp8EveryKernelClass) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_dense_case(fp8_case(4, 2, 16, {1, 63, 65, 0}, true, 6009)));
  ASSERT_NO_FATAL_FAILURE(run_dense_case(fp8_case(3, 1, 64, {64, 130, 2}, false, 6010)));
  ASSERT_NO_FATAL_FAILURE(run_dense_case(fp8_case(2, 2, 128, {3000, 5}, true, 6011)));
}

TEST(GpuDenseDecodeSanitizer, Fp8GarbageLengths) {
  FLASHMLA_REQUIRE_GPU();
  DenseDecodeProblem problem = make_dense_decode_problem(fp8_case(4, 1, 128, {64, 10, 130, 5}, false, 6012));
  problem.cache_seqlens[1] = -5;
  problem.cache_seqlens[2] = 1000000;
  problem.cache_seqlens[3] = INT32_MAX;
  ASSERT_NO_FATAL_FAILURE(run_dense_problem(problem));
}

}  // namespace
}  // namespace flashmla::test
