// validate(SparseDecodeArgs): one test per rule of spec sections 3-6, each
// breaking exactly that rule of an otherwise valid call.
#include <limits>

#include <gtest/gtest.h>

#include "api/status_matchers.h"
#include "api/valid_args.h"

namespace flashmla::test {
namespace {

class SparseDecodeValidate : public ::testing::Test {
 protected:
  SparseDecodeArgs a = sparse_decode_args();
  SparseDecodeArgs with_extra = sparse_decode_args({.extra_topk = 64});
};

TEST_F(SparseDecodeValidate, ValidArgsAreOk) { EXPECT_TRUE(is_ok(validate(a))); }

TEST_F(SparseDecodeValidate, ValidArgsWithExtraCacheAreOk) {
  EXPECT_TRUE(is_ok(validate(with_extra)));
}

// ----- accepted edge cases --------------------------------------------------------

TEST_F(SparseDecodeValidate, EmptyBatchAcceptedWithNullPointers) {
  a = sparse_decode_args({.b = 0});
  a.q = nullptr;
  a.indices = nullptr;
  a.out = nullptr;
  a.lse = nullptr;
  a.schedule = DecodeSchedule{};
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(SparseDecodeValidate, Model1FormatAccepted) {
  EXPECT_TRUE(is_ok(validate(sparse_decode_args({.kv_format = KVFormat::kFp8Model1}))));
}

TEST_F(SparseDecodeValidate, OddPageSizeAndHeadCountAccepted) {
  // 53 * 584 is not a multiple of 16: the builder pads the page stride.
  EXPECT_TRUE(is_ok(validate(sparse_decode_args(
      {.b = 1, .s_q = 1, .h_q = 9, .page_block_size = 53, .kv_format = KVFormat::kFp8Model1}))));
}

TEST_F(SparseDecodeValidate, OptionalInputsAccepted) {
  a.topk_length = fake_address<const int32_t>(0x430000);
  a.attn_sink = fake_address<const float>(0x440000);
  EXPECT_TRUE(is_ok(validate(a)));
}

// ----- shapes ---------------------------------------------------------------------

TEST_F(SparseDecodeValidate, NegativeB) {
  a.b = -3;
  EXPECT_TRUE(is_invalid(validate(a), "b: expected >= 0, got -3"));
}

TEST_F(SparseDecodeValidate, ZeroQueryTokens) {
  a.s_q = 0;
  EXPECT_TRUE(is_invalid(validate(a), "s_q: expected >= 1, got 0"));
}

TEST_F(SparseDecodeValidate, ZeroQueryHeads) {
  a.h_q = 0;
  EXPECT_TRUE(is_invalid(validate(a), "h_q: expected >= 1, got 0"));
}

TEST_F(SparseDecodeValidate, ZeroTopk) {
  a.topk = 0;
  EXPECT_TRUE(is_invalid(validate(a), "topk: expected >= 1, got 0"));
}

TEST_F(SparseDecodeValidate, ZeroPageBlockSize) {
  a.page_block_size = 0;
  EXPECT_TRUE(is_invalid(validate(a), "page_block_size: expected >= 1, got 0"));
}

TEST_F(SparseDecodeValidate, NegativeNumBlocks) {
  a.num_blocks = -1;
  EXPECT_TRUE(is_invalid(validate(a), "num_blocks: expected >= 0, got -1"));
}

// ----- formats --------------------------------------------------------------------

TEST_F(SparseDecodeValidate, NativeKvFormat) {
  a.kv_format = KVFormat::kNative;
  EXPECT_TRUE(is_invalid(validate(a), "kv_format: expected fp8_v32 or fp8_model1, got native"));
}

TEST_F(SparseDecodeValidate, DqkDisagreesWithV32) {
  a.d_qk = 512;
  EXPECT_TRUE(is_invalid(validate(a), "d_qk: expected 576 with kv_format fp8_v32, got 512"));
}

TEST_F(SparseDecodeValidate, DqkDisagreesWithModel1) {
  a = sparse_decode_args({.kv_format = KVFormat::kFp8Model1});
  a.d_qk = 576;
  EXPECT_TRUE(is_invalid(validate(a), "d_qk: expected 512 with kv_format fp8_model1, got 576"));
}

TEST_F(SparseDecodeValidate, DvLargerThanDqk) {
  a.d_v = 640;
  EXPECT_TRUE(is_invalid(validate(a), "d_v: expected <= d_qk = 576 (v is the first d_v dims of k), got 640"));
}

// ----- extra cache ----------------------------------------------------------------

TEST_F(SparseDecodeValidate, ExtraIndicesWithoutExtraKv) {
  with_extra.extra_kv = nullptr;
  EXPECT_TRUE(is_invalid(validate(with_extra), "extra_indices: expected nullptr without extra_kv, got 0x420000"));
}

TEST_F(SparseDecodeValidate, ExtraTopkLengthWithoutExtraKv) {
  a.extra_topk_length = fake_address<const int32_t>(0x450000);
  EXPECT_TRUE(is_invalid(validate(a), "extra_topk_length: expected nullptr without extra_kv, got 0x450000"));
}

TEST_F(SparseDecodeValidate, ExtraTopkWithoutExtraKv) {
  a.extra_topk = 64;
  EXPECT_TRUE(is_invalid(validate(a), "extra_topk: expected 0 without extra_kv, got 64"));
}

TEST_F(SparseDecodeValidate, ZeroExtraTopkWithExtraKv) {
  with_extra.extra_topk = 0;
  EXPECT_TRUE(is_invalid(validate(with_extra), "extra_topk: expected >= 1, got 0"));
}

TEST_F(SparseDecodeValidate, ZeroExtraPageBlockSize) {
  with_extra.extra_page_block_size = 0;
  EXPECT_TRUE(is_invalid(validate(with_extra), "extra_page_block_size: expected >= 1, got 0"));
}

TEST_F(SparseDecodeValidate, NegativeExtraNumBlocks) {
  with_extra.extra_num_blocks = -1;
  EXPECT_TRUE(is_invalid(validate(with_extra), "extra_num_blocks: expected >= 0, got -1"));
}

TEST_F(SparseDecodeValidate, NullExtraIndices) {
  with_extra.extra_indices = nullptr;
  EXPECT_TRUE(is_invalid(validate(with_extra), "extra_indices: expected a non-null pointer, got nullptr"));
}

TEST_F(SparseDecodeValidate, ExtraPageStrideBelowPageBytes) {
  with_extra.stride_extra_kv_block = 64 * 656 - 16;
  EXPECT_TRUE(is_invalid(validate(with_extra), "stride_extra_kv_block: expected >= 41984 (the span of the dims inside it), got 41968"));
}

TEST_F(SparseDecodeValidate, ExtraIndicesStrideBelowExtraTopk) {
  with_extra.stride_extra_indices_s = 32;
  EXPECT_TRUE(is_invalid(validate(with_extra), "stride_extra_indices_s: expected >= 64 (the span of the dims inside it), got 32"));
}

TEST_F(SparseDecodeValidate, ScheduleWithoutExtraTopk) {
  with_extra.schedule.extra_topk = 0;
  EXPECT_TRUE(is_invalid(validate(with_extra), "schedule: planned for extra_topk = 0, called with extra_topk = 64"));
}

// ----- tensors --------------------------------------------------------------------

TEST_F(SparseDecodeValidate, NullQ) {
  a.q = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "q: expected a non-null pointer, got nullptr"));
}

TEST_F(SparseDecodeValidate, NullIndices) {
  a.indices = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "indices: expected a non-null pointer, got nullptr"));
}

TEST_F(SparseDecodeValidate, MisalignedKv) {
  a.kv = fake_address<const void>(0x1000008);
  EXPECT_TRUE(is_invalid(validate(a), "kv: expected a 16-byte aligned pointer, got 0x1000008"));
}

TEST_F(SparseDecodeValidate, MisalignedTopkLength) {
  a.topk_length = fake_address<const int32_t>(0x430002);
  EXPECT_TRUE(is_invalid(validate(a), "topk_length: expected a 4-byte aligned pointer, got 0x430002"));
}

TEST_F(SparseDecodeValidate, MisalignedAttnSink) {
  a.attn_sink = fake_address<const float>(0x440001);
  EXPECT_TRUE(is_invalid(validate(a), "attn_sink: expected a 4-byte aligned pointer, got 0x440001"));
}

TEST_F(SparseDecodeValidate, PageStrideBelowPageBytes) {
  a.stride_kv_block = 64 * 656 - 656;
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_block: expected >= 41984 (the span of the dims inside it), got 41328"));
}

TEST_F(SparseDecodeValidate, Model1PageStrideNot16ByteMultiple) {
  a = sparse_decode_args({.page_block_size = 53, .kv_format = KVFormat::kFp8Model1});
  a.stride_kv_block = 53 * 584;  // 30952 = 16 * 1934 + 8
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_block: expected a multiple of 16 elements (16 bytes), got 30952"));
}

TEST_F(SparseDecodeValidate, IndicesStrideBelowTopk) {
  a.stride_indices_s = 64;
  EXPECT_TRUE(is_invalid(validate(a), "stride_indices_s: expected >= 128 (the span of the dims inside it), got 64"));
}

TEST_F(SparseDecodeValidate, OutBatchStrideOverlapsTokens) {
  a.stride_out_b = 32768;
  EXPECT_TRUE(is_invalid(validate(a), "stride_out_b: expected >= 65536 (the span of the dims inside it), got 32768"));
}

TEST_F(SparseDecodeValidate, InfiniteSoftmaxScale) {
  a.softmax_scale = -std::numeric_limits<float>::infinity();
  EXPECT_TRUE(is_invalid(validate(a), "softmax_scale: expected a finite value > 0, got -inf"));
}

// ----- schedule -------------------------------------------------------------------

TEST_F(SparseDecodeValidate, SchedulePlannedForDense) {
  a.schedule.kind = DecodeKind::kDense;
  EXPECT_TRUE(is_invalid(validate(a), "schedule: planned for kind dense, called with kind sparse"));
}

TEST_F(SparseDecodeValidate, SchedulePlannedForOtherTopk) {
  a.schedule.topk = 2048;
  EXPECT_TRUE(is_invalid(validate(a), "schedule: planned for topk = 2048, called with topk = 128"));
}

TEST_F(SparseDecodeValidate, SchedulePlannedForOtherBatch) {
  a.schedule.b = 2;
  EXPECT_TRUE(is_invalid(validate(a), "schedule: planned for b = 2, called with b = 3"));
}

// ----- valid but not supported ----------------------------------------------------------

TEST_F(SparseDecodeValidate, MoreThan128HeadsNotSupported) {
  a = sparse_decode_args({.h_q = 256});
  EXPECT_TRUE(is_not_supported(validate(a), "h_q: expected at most 128 (the sparse kernels' limit), got 256"));
}

TEST_F(SparseDecodeValidate, MoreThan128QueryTokensNotSupported) {
  a = sparse_decode_args({.s_q = 200});
  EXPECT_TRUE(is_not_supported(validate(a), "s_q: expected at most 128 (the decode kernels' limit), got 200"));
}

TEST_F(SparseDecodeValidate, TopkNotAMultipleOf64NotSupported) {
  a = sparse_decode_args({.topk = 100});
  EXPECT_TRUE(is_not_supported(validate(a), "topk: expected a multiple of 64 (the kernels' index tile), got 100"));
}

TEST_F(SparseDecodeValidate, ExtraTopkNotAMultipleOf64NotSupported) {
  a = sparse_decode_args({.extra_topk = 32});
  EXPECT_TRUE(is_not_supported(validate(a), "extra_topk: expected a multiple of 64 (the kernels' index tile), got 32"));
}

TEST_F(SparseDecodeValidate, Dv256NotSupported) {
  a.d_v = 256;
  EXPECT_TRUE(is_not_supported(validate(a), "d_v: expected 512 (the only d_v the kernels are built for), got 256"));
}

}  // namespace
}  // namespace flashmla::test
