// A small subset for compute-sanitizer (each case runs in seconds under
// memcheck), covering the paths that could touch memory they should not:
// the invalid-index zoo next to the first and last rows, s_kv = 1, all
// indices invalid, garbage and zero topk_length, padded strides, sinks,
// both d_qk, the smallest and largest h_q.
//
//   compute-sanitizer --tool memcheck build/tests/sparse_prefill/flashmla_sparse_prefill_tests \
//       --gtest_filter='GpuSparsePrefillSanitizer*'
//
// (also usable with --tool racecheck / initcheck / synccheck).
#include <climits>
#include <cstdint>

#include <gtest/gtest.h>

#include "sparse_prefill/sparse_prefill_case.h"

namespace flashmla::test {
namespace {

SparsePrefillConfig small_case(int64_t s_q, int64_t s_kv, int64_t h_q, int64_t topk, int64_t d_qk, uint64_t seed) {
  SparsePrefillConfig c = prefill_config(s_q, s_kv, h_q, topk, d_qk);
  c.seed = seed;
  return c;
}

TEST(GpuSparsePrefillSanitizer, OneKvRowZooAndDuplicates) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_prefill_case(small_case(3, 1, 16, 64, 576, 8001)));
}

TEST(GpuSparsePrefillSanitizer, AllIndicesInvalid) {
  FLASHMLA_REQUIRE_GPU();
  SparsePrefillConfig c = small_case(3, 64, 16, 128, 512, 8002);
  c.invalid_fraction = 1.0;
  ASSERT_NO_FATAL_FAILURE(run_prefill_case(c));
}

TEST(GpuSparsePrefillSanitizer, GarbageAndZeroTopkLength) {
  FLASHMLA_REQUIRE_GPU();
  SparsePrefillConfig c = small_case(5, 1000, 1, 512, 576, 8003);
  c.with_topk_length = true;
  c.topk_length = {0, -7, 513, INT32_MAX, 200};
  ASSERT_NO_FATAL_FAILURE(run_prefill_case(c));
}

TEST(GpuSparsePrefillSanitizer, PaddedStridesAndSinks) {
  FLASHMLA_REQUIRE_GPU();
  SparsePrefillConfig c = small_case(4, 1000, 32, 128, 512, 8004);
  c.pad = 8;
  c.attn_sink = mixed_sinks(32);
  ASSERT_NO_FATAL_FAILURE(run_prefill_case(c));
}

TEST(GpuSparsePrefillSanitizer, MaxHeadsLongTopk) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_prefill_case(small_case(2, 4096, 128, 2048, 576, 8005)));
}

TEST(GpuSparsePrefillSanitizer, SeveralQueryTilesFewHeads) {
  FLASHMLA_REQUIRE_GPU();
  ASSERT_NO_FATAL_FAILURE(run_prefill_case(small_case(130, 64, 16, 64, 512, 8006)));
}

}  // namespace
}  // namespace flashmla::test
