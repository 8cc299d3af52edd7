// validate(DenseDecodeArgs): one test per rule of spec sections 4-6, each
// breaking exactly that rule of an otherwise valid call.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "api/status_matchers.h"
#include "api/valid_args.h"

namespace flashmla::test {
namespace {

class DenseDecodeValidate : public ::testing::Test {
 protected:
  DenseDecodeArgs a = dense_decode_args();
};

TEST_F(DenseDecodeValidate, ValidArgsAreOk) { EXPECT_TRUE(is_ok(validate(a))); }

// ----- accepted edge cases --------------------------------------------------------

TEST_F(DenseDecodeValidate, EmptyBatchAcceptedWithNullPointersAndNoSchedule) {
  a = dense_decode_args({.b = 0});
  a.q = nullptr;
  a.block_table = nullptr;
  a.cache_seqlens = nullptr;
  a.out = nullptr;
  a.lse = nullptr;
  a.schedule = DecodeSchedule{};
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(DenseDecodeValidate, EmptyCacheAcceptedWithNullKv) {
  a = dense_decode_args({.num_blocks = 0});
  a.kv = nullptr;
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(DenseDecodeValidate, EmptyBlockTableAcceptedWithNullPointer) {
  a = dense_decode_args({.max_blocks_per_seq = 0});
  a.block_table = nullptr;
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(DenseDecodeValidate, Float16Accepted) {
  EXPECT_TRUE(is_ok(validate(dense_decode_args({.dtype = DType::kFloat16}))));
}

TEST_F(DenseDecodeValidate, GroupedKvHeadsAccepted) {
  EXPECT_TRUE(is_ok(validate(dense_decode_args({.h_q = 16, .h_kv = 4}))));
}

TEST_F(DenseDecodeValidate, Model1HeadDimAccepted) {
  EXPECT_TRUE(is_ok(validate(dense_decode_args({.d_qk = 512}))));
}

TEST_F(DenseDecodeValidate, OddHeadCountAccepted) {
  EXPECT_TRUE(is_ok(validate(dense_decode_args({.b = 9, .s_q = 3, .h_q = 133}))));
}

TEST_F(DenseDecodeValidate, CausalAcceptedForOneAndManyQueryTokens) {
  a = dense_decode_args({.s_q = 1});
  a.causal = true;
  EXPECT_TRUE(is_ok(validate(a)));
  a = dense_decode_args({.s_q = 8});
  a.causal = true;
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(DenseDecodeValidate, PaddedStridesAccepted) {
  a.stride_q_h = 640;  // q as a view of a fused buffer
  a.stride_q_s = 16 * 640;
  a.stride_q_b = 2 * 16 * 640 + 64;
  a.stride_kv_block = 64 * 576 * 3;  // one layer of a multi-layer pool
  EXPECT_TRUE(is_ok(validate(a)));
}

// ----- shapes ---------------------------------------------------------------------

TEST_F(DenseDecodeValidate, NegativeB) {
  a.b = -1;
  EXPECT_TRUE(is_invalid(validate(a), "b: expected >= 0, got -1"));
}

TEST_F(DenseDecodeValidate, BBeyondInt32) {
  a.b = int64_t(1) << 31;
  EXPECT_TRUE(is_invalid(validate(a), "b: expected <= 2147483647 (int32), got 2147483648"));
}

TEST_F(DenseDecodeValidate, ZeroQueryTokens) {
  a.s_q = 0;
  EXPECT_TRUE(is_invalid(validate(a), "s_q: expected >= 1, got 0"));
}

TEST_F(DenseDecodeValidate, ZeroQueryHeads) {
  a.h_q = 0;
  EXPECT_TRUE(is_invalid(validate(a), "h_q: expected >= 1, got 0"));
}

TEST_F(DenseDecodeValidate, ZeroKvHeads) {
  a.h_kv = 0;
  EXPECT_TRUE(is_invalid(validate(a), "h_kv: expected >= 1, got 0"));
}

TEST_F(DenseDecodeValidate, QueryHeadsNotAMultipleOfKvHeads) {
  a.h_q = 8;
  a.h_kv = 3;
  EXPECT_TRUE(is_invalid(validate(a), "h_q: expected a multiple of h_kv = 3, got 8"));
}

TEST_F(DenseDecodeValidate, ZeroDv) {
  a.d_v = 0;
  EXPECT_TRUE(is_invalid(validate(a), "d_v: expected >= 1, got 0"));
}

TEST_F(DenseDecodeValidate, DqkSmallerThanDv) {
  a.d_qk = 448;
  EXPECT_TRUE(is_invalid(validate(a), "d_qk: expected >= d_v = 512 (v is the first d_v dims of k), got 448"));
}

TEST_F(DenseDecodeValidate, ZeroPageBlockSize) {
  a.page_block_size = 0;
  EXPECT_TRUE(is_invalid(validate(a), "page_block_size: expected >= 1, got 0"));
}

TEST_F(DenseDecodeValidate, NegativeNumBlocks) {
  a.num_blocks = -1;
  EXPECT_TRUE(is_invalid(validate(a), "num_blocks: expected >= 0, got -1"));
}

TEST_F(DenseDecodeValidate, NegativeMaxBlocksPerSeq) {
  a.max_blocks_per_seq = -2;
  EXPECT_TRUE(is_invalid(validate(a), "max_blocks_per_seq: expected >= 0, got -2"));
}

// ----- dtypes and formats ---------------------------------------------------------------

TEST_F(DenseDecodeValidate, Float32Query) {
  a.dtype = DType::kFloat32;
  EXPECT_TRUE(is_invalid(validate(a), "dtype (of q and out): expected bfloat16 or float16, got float32"));
}

TEST_F(DenseDecodeValidate, Model1KvFormat) {
  a.kv_format = KVFormat::kFp8Model1;
  EXPECT_TRUE(is_invalid(validate(a), "kv_format: expected native or fp8_v32, got fp8_model1"));
}

TEST_F(DenseDecodeValidate, Fp8NeedsBFloat16Query) {
  a = dense_decode_args({.dtype = DType::kFloat16, .kv_format = KVFormat::kFp8V32});
  EXPECT_TRUE(is_invalid(validate(a), "dtype (of q and out): expected bfloat16 with kv_format fp8_v32, got float16"));
}

TEST_F(DenseDecodeValidate, Fp8NeedsDqk576) {
  a = dense_decode_args({.d_qk = 512, .kv_format = KVFormat::kFp8V32});
  EXPECT_TRUE(is_invalid(validate(a), "d_qk: expected 576 with kv_format fp8_v32, got 512"));
}

TEST_F(DenseDecodeValidate, Fp8NeedsOneKvHead) {
  a = dense_decode_args({.h_kv = 2, .kv_format = KVFormat::kFp8V32});
  EXPECT_TRUE(is_invalid(validate(a), "h_kv: expected 1 with kv_format fp8_v32, got 2"));
}

TEST_F(DenseDecodeValidate, Fp8RowStrideIsTheTokenSize) {
  a = dense_decode_args({.kv_format = KVFormat::kFp8V32});
  a.stride_kv_row = 672;
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_row: expected 656 (fp8_v32 tokens are packed back to back), got 672"));
}

TEST_F(DenseDecodeValidate, Fp8PageStrideBelowPageBytes) {
  a = dense_decode_args({.kv_format = KVFormat::kFp8V32});
  a.stride_kv_block = 64 * 656 - 16;
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_block: expected >= 41984 (the span of the dims inside it), got 41968"));
}

TEST_F(DenseDecodeValidate, Fp8PageStrideNot16ByteMultiple) {
  a = dense_decode_args({.kv_format = KVFormat::kFp8V32});
  a.stride_kv_block = 64 * 656 + 8;
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_block: expected a multiple of 16 elements (16 bytes), got 41992"));
}

// ----- softmax_scale ------------------------------------------------------------------

TEST_F(DenseDecodeValidate, NanSoftmaxScale) {
  a.softmax_scale = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(is_invalid(validate(a), "softmax_scale: expected a finite value > 0, got nan"));
}

TEST_F(DenseDecodeValidate, InfiniteSoftmaxScale) {
  a.softmax_scale = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(is_invalid(validate(a), "softmax_scale: expected a finite value > 0, got inf"));
}

TEST_F(DenseDecodeValidate, ZeroSoftmaxScale) {
  a.softmax_scale = 0.0f;
  EXPECT_TRUE(is_invalid(validate(a), "softmax_scale: expected a finite value > 0, got 0"));
}

TEST_F(DenseDecodeValidate, NegativeSoftmaxScale) {
  a.softmax_scale = -0.5f;
  EXPECT_TRUE(is_invalid(validate(a), "softmax_scale: expected a finite value > 0, got -0.5"));
}

// ----- pointers -------------------------------------------------------------------

TEST_F(DenseDecodeValidate, NullQ) {
  a.q = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "q: expected a non-null pointer, got nullptr"));
}

TEST_F(DenseDecodeValidate, NullKv) {
  a.kv = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "kv: expected a non-null pointer, got nullptr"));
}

TEST_F(DenseDecodeValidate, NullBlockTable) {
  a.block_table = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "block_table: expected a non-null pointer, got nullptr"));
}

TEST_F(DenseDecodeValidate, NullCacheSeqlens) {
  a.cache_seqlens = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "cache_seqlens: expected a non-null pointer, got nullptr"));
}

TEST_F(DenseDecodeValidate, NullOut) {
  a.out = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "out: expected a non-null pointer, got nullptr"));
}

TEST_F(DenseDecodeValidate, NullLse) {
  a.lse = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "lse: expected a non-null pointer, got nullptr"));
}

// ----- alignment ------------------------------------------------------------------

TEST_F(DenseDecodeValidate, MisalignedQ) {
  a.q = fake_address<const void>(0x10008);
  EXPECT_TRUE(is_invalid(validate(a), "q: expected a 16-byte aligned pointer, got 0x10008"));
}

TEST_F(DenseDecodeValidate, MisalignedKv) {
  a.kv = fake_address<const void>(0x1000003);
  EXPECT_TRUE(is_invalid(validate(a), "kv: expected a 16-byte aligned pointer, got 0x1000003"));
}

TEST_F(DenseDecodeValidate, MisalignedOut) {
  a.out = fake_address(0x700004);
  EXPECT_TRUE(is_invalid(validate(a), "out: expected a 16-byte aligned pointer, got 0x700004"));
}

TEST_F(DenseDecodeValidate, MisalignedLse) {
  a.lse = fake_address<float>(0x800002);
  EXPECT_TRUE(is_invalid(validate(a), "lse: expected a 4-byte aligned pointer, got 0x800002"));
}

TEST_F(DenseDecodeValidate, MisalignedBlockTable) {
  a.block_table = fake_address<const int32_t>(0x400001);
  EXPECT_TRUE(is_invalid(validate(a), "block_table: expected a 4-byte aligned pointer, got 0x400001"));
}

TEST_F(DenseDecodeValidate, MisalignedCacheSeqlens) {
  a.cache_seqlens = fake_address<const int32_t>(0x500002);
  EXPECT_TRUE(is_invalid(validate(a), "cache_seqlens: expected a 4-byte aligned pointer, got 0x500002"));
}

// ----- strides --------------------------------------------------------------------

TEST_F(DenseDecodeValidate, QueryHeadStrideBelowDqk) {
  a.stride_q_h = 512;
  EXPECT_TRUE(is_invalid(validate(a), "stride_q_h: expected >= 576 (the span of the dims inside it), got 512"));
}

TEST_F(DenseDecodeValidate, QueryTokenStrideOverlapsHeads) {
  a.stride_q_s = 15 * 576;
  EXPECT_TRUE(is_invalid(validate(a), "stride_q_s: expected >= 9216 (the span of the dims inside it), got 8640"));
}

TEST_F(DenseDecodeValidate, NegativeQueryBatchStride) {
  a.stride_q_b = -18432;
  EXPECT_TRUE(is_invalid(validate(a), "stride_q_b: expected >= 18432 (the span of the dims inside it), got -18432"));
}

TEST_F(DenseDecodeValidate, QueryHeadStrideNot16ByteMultiple) {
  a.stride_q_h = 580;
  EXPECT_TRUE(is_invalid(validate(a), "stride_q_h: expected a multiple of 8 elements (16 bytes), got 580"));
}

TEST_F(DenseDecodeValidate, KvHeadStrideBelowDqk) {
  a.stride_kv_h = 288;
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_h: expected >= 576 (the span of the dims inside it), got 288"));
}

TEST_F(DenseDecodeValidate, KvRowStrideZero) {
  a.stride_kv_row = 0;
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_row: expected >= 576 (the span of the dims inside it), got 0"));
}

TEST_F(DenseDecodeValidate, KvPageStrideOverlapsRows) {
  a.stride_kv_block = 63 * 576;
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_block: expected >= 36864 (the span of the dims inside it), got 36288"));
}

TEST_F(DenseDecodeValidate, BlockTableStrideBelowMaxBlocks) {
  a.stride_block_table_b = 4;
  EXPECT_TRUE(is_invalid(validate(a), "stride_block_table_b: expected >= 8 (the span of the dims inside it), got 4"));
}

TEST_F(DenseDecodeValidate, OutHeadStrideNot16ByteMultiple) {
  a.stride_out_h = 516;
  EXPECT_TRUE(is_invalid(validate(a), "stride_out_h: expected a multiple of 8 elements (16 bytes), got 516"));
}

TEST_F(DenseDecodeValidate, OutTokenStrideOverlapsHeads) {
  a.stride_out_s = 512;
  EXPECT_TRUE(is_invalid(validate(a), "stride_out_s: expected >= 8192 (the span of the dims inside it), got 512"));
}

TEST_F(DenseDecodeValidate, LseHeadStrideOverlapsTokens) {
  a.stride_lse_h = 1;
  EXPECT_TRUE(is_invalid(validate(a), "stride_lse_h: expected >= 2 (the span of the dims inside it), got 1"));
}

TEST_F(DenseDecodeValidate, LseBatchStrideOverlapsHeads) {
  a.stride_lse_b = 16;
  EXPECT_TRUE(is_invalid(validate(a), "stride_lse_b: expected >= 32 (the span of the dims inside it), got 16"));
}

TEST_F(DenseDecodeValidate, QuerySizeOverflowsInt64) {
  a.stride_q_b = int64_t(1) << 62;
  EXPECT_TRUE(is_invalid(validate(a), "q: expected a size that fits in int64, got an overflow at b = 4 rows of stride_q_b = 4611686018427387904"));
}

TEST_F(DenseDecodeValidate, QueryBytesOverflowInt64) {
  a.b = 2;
  a.stride_q_b = (int64_t(1) << 62) + 8;  // fits as elements, not as bytes
  EXPECT_TRUE(is_invalid(validate(a), "q: expected a size that fits in int64, got 4611686018427406344 elements of 2 bytes (overflow)"));
}

// ----- schedule -------------------------------------------------------------------

TEST_F(DenseDecodeValidate, ScheduleWithoutData) {
  a.schedule.data = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "schedule.data: expected a non-null pointer, got nullptr"));
}

TEST_F(DenseDecodeValidate, MisalignedSchedule) {
  a.schedule.data = fake_address<const void>(0x600004);
  EXPECT_TRUE(is_invalid(validate(a), "schedule.data: expected a 16-byte aligned pointer, got 0x600004"));
}

TEST_F(DenseDecodeValidate, ScheduleBufferTooSmall) {
  a.schedule.bytes = 100;
  EXPECT_TRUE(is_invalid(validate(a), "schedule.bytes: expected >= 4272 (schedule_bytes(b = 4, num_workers = 132)), got 100"));
}

TEST_F(DenseDecodeValidate, ScheduleWithoutWorkers) {
  a.schedule.num_workers = 0;
  EXPECT_TRUE(is_invalid(validate(a), "schedule.num_workers: expected >= 1, got 0"));
}

TEST_F(DenseDecodeValidate, SchedulePlannedForSparse) {
  a.schedule.kind = DecodeKind::kSparse;
  EXPECT_TRUE(is_invalid(validate(a), "schedule: planned for kind sparse, called with kind dense"));
}

TEST_F(DenseDecodeValidate, SchedulePlannedForAnotherBatch) {
  a.b = 8;
  EXPECT_TRUE(is_invalid(validate(a), "schedule: planned for b = 4, called with b = 8"));
}

TEST_F(DenseDecodeValidate, SchedulePlannedForOtherQueryTokens) {
  a.schedule.s_q = 1;
  EXPECT_TRUE(is_invalid(validate(a), "schedule: planned for s_q = 1, called with s_q = 2"));
}

TEST_F(DenseDecodeValidate, SchedulePlannedForOtherHeads) {
  a.schedule.h_q = 128;
  EXPECT_TRUE(is_invalid(validate(a), "schedule: planned for h_q = 128, called with h_q = 16"));
}

TEST_F(DenseDecodeValidate, SchedulePlannedForOtherKvHeads) {
  a.schedule.h_kv = 2;
  EXPECT_TRUE(is_invalid(validate(a), "schedule: planned for h_kv = 2, called with h_kv = 1"));
}

TEST_F(DenseDecodeValidate, SchedulePlannedWithTopk) {
  a.schedule.topk = 64;
  EXPECT_TRUE(is_invalid(validate(a), "schedule: planned for topk = 64, called with topk = 0"));
}

// ----- valid but not supported ----------------------------------------------------------

TEST_F(DenseDecodeValidate, MoreThan128QueryTokensNotSupported) {
  a = dense_decode_args({.s_q = 129});
  EXPECT_TRUE(is_not_supported(validate(a), "s_q: expected at most 128 (the decode kernels' limit), got 129"));
}

TEST_F(DenseDecodeValidate, PageBlockSize32NotSupported) {
  a = dense_decode_args({.page_block_size = 32});
  EXPECT_TRUE(is_not_supported(validate(a), "page_block_size: expected 64 (the only page size dense_decode is built for), got 32"));
}

TEST_F(DenseDecodeValidate, Dqk640NotSupported) {
  a = dense_decode_args({.d_qk = 640});
  EXPECT_TRUE(is_not_supported(validate(a), "d_qk: expected 576 or 512 (the d_qk the kernels are built for), got 640"));
}

TEST_F(DenseDecodeValidate, Dv256NotSupported) {
  a = dense_decode_args({.d_v = 256});
  EXPECT_TRUE(is_not_supported(validate(a), "d_v: expected 512 (the only d_v the kernels are built for), got 256"));
}

TEST_F(DenseDecodeValidate, Fp8KvSupported) {
  a = dense_decode_args({.kv_format = KVFormat::kFp8V32});
  EXPECT_TRUE(validate(a).ok()) << validate(a).message;
  a = dense_decode_args({.h_q = 128, .kv_format = KVFormat::kFp8V32});
  EXPECT_TRUE(validate(a).ok()) << validate(a).message;
}

TEST_F(DenseDecodeValidate, Fp8KvBeyond128HeadsNotSupported) {
  a = dense_decode_args({.h_q = 129, .kv_format = KVFormat::kFp8V32});
  EXPECT_TRUE(is_not_supported(
      validate(a), "h_q: expected at most 128 (the FP8 kernels' limit with kv_format fp8_v32), got 129"));
  a = dense_decode_args({.h_q = 129});  // the bf16 kernel takes any head count
  EXPECT_TRUE(validate(a).ok()) << validate(a).message;
}

TEST_F(DenseDecodeValidate, Fp8KvPoolBeyondInt32TokensNotSupported) {
  a = dense_decode_args({.num_blocks = int64_t(INT32_MAX) / 64 + 1, .kv_format = KVFormat::kFp8V32});
  EXPECT_TRUE(is_not_supported(
      validate(a), "num_blocks: expected at most 33554431 (int32 token indices with kv_format fp8_v32), got 33554432"));
}

TEST_F(DenseDecodeValidate, InvalidWinsOverNotSupported) {
  a = dense_decode_args({.s_q = 129});
  a.q = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "q: expected a non-null pointer, got nullptr"));
}

}  // namespace
}  // namespace flashmla::test
