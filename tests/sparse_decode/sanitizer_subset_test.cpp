// A small subset for compute-sanitizer (each case runs in seconds under
// memcheck), covering the paths that could touch memory they should not:
// every zoo value and duplicates, positions past topk_length that point at
// real (NaN) tokens, garbage lengths, odd page sizes of both formats
// (MODEL1's scale region), the extra cache, all-invalid rows, split
// requests and their partials, padded strides, sinks.
//
//   compute-sanitizer --tool memcheck build/tests/sparse_decode/flashmla_sparse_decode_tests \
//       --gtest_filter='GpuSparseDecodeSanitizer*'
//
// (also usable with --tool racecheck / initcheck / synccheck).
#include <climits>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "sparse_decode/sparse_case.h"

namespace flashmla::test::sd {
namespace {

constexpr KVFormat kV32 = KVFormat::kFp8V32;
constexpr KVFormat kModel1 = KVFormat::kFp8Model1;
constexpr float kInf = std::numeric_limits<float>::infinity();

SparseDecodeConfig small_case(KVFormat format, int64_t b, int64_t s_q, int64_t h_q, int64_t topk, int64_t page,
                              uint64_t seed) {
  SparseDecodeConfig c = sparse_config(format, b, s_q, h_q, topk, page);
  c.seed = seed;
  return c;
}

TEST(GpuSparseDecodeSanitizer, V32OddPagesZooAndDuplicates) {
  FLASHMLA_REQUIRE_GPU();
  SparseDecodeConfig c = small_case(kV32, 3, 2, 16, 128, 53, 9901);
  c.invalid_fraction = 0.3;
  c.duplicate_fraction = 0.3;
  ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
}

TEST(GpuSparseDecodeSanitizer, Model1OddPagesPartialLengths) {
  FLASHMLA_REQUIRE_GPU();
  SparseDecodeConfig c = small_case(kModel1, 3, 1, 8, 128, 69, 9902);
  c.with_topk_length = true;
  c.topk_length = {128, 0, 33};
  ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
}

TEST(GpuSparseDecodeSanitizer, ExtraCacheBothFormats) {
  FLASHMLA_REQUIRE_GPU();
  for (KVFormat format : {kV32, kModel1}) {
    SparseDecodeConfig c = small_case(format, 2, 3, 1, 64, 2, 9903);
    c.extra_topk = 64;
    c.extra_page_block_size = 256;
    c.with_extra_topk_length = true;
    c.extra_topk_length = {64, 5};
    ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
  }
}

TEST(GpuSparseDecodeSanitizer, GarbageLengths) {
  FLASHMLA_REQUIRE_GPU();
  SparseDecodeConfig c = small_case(kV32, 4, 1, 16, 64, 64, 9904);
  c.with_topk_length = true;
  c.topk_length = {-5, INT32_MAX, INT32_MIN, 65};
  ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
}

TEST(GpuSparseDecodeSanitizer, AllInvalidWithSinks) {
  FLASHMLA_REQUIRE_GPU();
  SparseDecodeConfig c = small_case(kModel1, 2, 2, 4, 128, 64, 9905);
  c.invalid_fraction = 1.0;
  c.attn_sink = {-kInf, 0.5f, kInf, 3.0f};
  ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
}

TEST(GpuSparseDecodeSanitizer, SplitRequestDeviceSmsAndOneWorker) {
  FLASHMLA_REQUIRE_GPU();
  SparseDecodeConfig c = small_case(kV32, 1, 1, 128, 2048, 64, 9906);
  ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
  ASSERT_NO_FATAL_FAILURE(run_sparse_case(c, 1));
}

TEST(GpuSparseDecodeSanitizer, PaddedStrides) {
  FLASHMLA_REQUIRE_GPU();
  SparseDecodeConfig c = small_case(kModel1, 2, 2, 32, 64, 53, 9907);
  c.pad = 8;
  c.attn_sink = sink_pattern(c.h_q, {1.0f, kInf});
  ASSERT_NO_FATAL_FAILURE(run_sparse_case(c));
}

}  // namespace
}  // namespace flashmla::test::sd
