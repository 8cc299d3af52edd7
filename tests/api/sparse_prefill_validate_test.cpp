// validate(SparsePrefillArgs): one test per rule, each breaking exactly that
// rule of an otherwise valid call.
#include <limits>

#include <gtest/gtest.h>

#include "api/status_matchers.h"
#include "api/valid_args.h"

namespace flashmla::test {
namespace {

class SparsePrefillValidate : public ::testing::Test {
 protected:
  SparsePrefillArgs a = sparse_prefill_args();
};

TEST_F(SparsePrefillValidate, ValidArgsAreOk) { EXPECT_TRUE(is_ok(validate(a))); }

TEST_F(SparsePrefillValidate, NoQueryTokensAcceptedWithNullPointers) {
  a = sparse_prefill_args({.s_q = 0});
  a.q = nullptr;
  a.indices = nullptr;
  a.out = nullptr;
  a.max_logits = nullptr;
  a.lse = nullptr;
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(SparsePrefillValidate, EmptyKvAcceptedWithNullPointer) {
  a = sparse_prefill_args({.s_kv = 0});
  a.kv = nullptr;
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(SparsePrefillValidate, Model1DimsAndOptionalInputsAccepted) {
  a = sparse_prefill_args({.h_q = 3, .d_qk = 512});
  a.attn_sink = fake_address<const float>(0x440000);
  a.topk_length = fake_address<const int32_t>(0x430000);
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(SparsePrefillValidate, NegativeQueryTokens) {
  a.s_q = -1;
  EXPECT_TRUE(is_invalid(validate(a), "s_q: expected >= 0, got -1"));
}

TEST_F(SparsePrefillValidate, NegativeKvTokens) {
  a.s_kv = -5;
  EXPECT_TRUE(is_invalid(validate(a), "s_kv: expected >= 0, got -5"));
}

TEST_F(SparsePrefillValidate, ZeroKvHeads) {
  a.h_kv = 0;
  EXPECT_TRUE(is_invalid(validate(a), "h_kv: expected >= 1, got 0"));
}

TEST_F(SparsePrefillValidate, QueryHeadsNotAMultipleOfKvHeads) {
  a.h_kv = 5;
  EXPECT_TRUE(is_invalid(validate(a), "h_q: expected a multiple of h_kv = 5, got 64"));
}

TEST_F(SparsePrefillValidate, NegativeTopk) {
  a.topk = -64;
  EXPECT_TRUE(is_invalid(validate(a), "topk: expected >= 1, got -64"));
}

TEST_F(SparsePrefillValidate, DqkSmallerThanDv) {
  a.d_qk = 256;
  EXPECT_TRUE(is_invalid(validate(a), "d_qk: expected >= d_v = 512 (v is the first d_v dims of k), got 256"));
}

TEST_F(SparsePrefillValidate, NanSoftmaxScale) {
  a.softmax_scale = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(is_invalid(validate(a), "softmax_scale: expected a finite value > 0, got nan"));
}

TEST_F(SparsePrefillValidate, NullKv) {
  a.kv = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "kv: expected a non-null pointer, got nullptr"));
}

TEST_F(SparsePrefillValidate, NullMaxLogits) {
  a.max_logits = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "max_logits: expected a non-null pointer, got nullptr"));
}

TEST_F(SparsePrefillValidate, MisalignedQ) {
  a.q = fake_address<const void>(0x10002);
  EXPECT_TRUE(is_invalid(validate(a), "q: expected a 16-byte aligned pointer, got 0x10002"));
}

TEST_F(SparsePrefillValidate, MisalignedIndices) {
  a.indices = fake_address<const int32_t>(0x400003);
  EXPECT_TRUE(is_invalid(validate(a), "indices: expected a 4-byte aligned pointer, got 0x400003"));
}

TEST_F(SparsePrefillValidate, KvTokenStrideBelowDqk) {
  a.stride_kv_s = 512;
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_s: expected >= 576 (the span of the dims inside it), got 512"));
}

TEST_F(SparsePrefillValidate, KvTokenStrideNot16ByteMultiple) {
  a.stride_kv_s = 577;
  EXPECT_TRUE(is_invalid(validate(a), "stride_kv_s: expected a multiple of 8 elements (16 bytes), got 577"));
}

TEST_F(SparsePrefillValidate, IndicesTokenStrideBelowTopk) {
  a.stride_indices_s = 255;
  EXPECT_TRUE(is_invalid(validate(a), "stride_indices_s: expected >= 256 (the span of the dims inside it), got 255"));
}

TEST_F(SparsePrefillValidate, MaxLogitsStrideBelowHeads) {
  a.stride_max_logits_s = 32;
  EXPECT_TRUE(is_invalid(validate(a), "stride_max_logits_s: expected >= 64 (the span of the dims inside it), got 32"));
}

TEST_F(SparsePrefillValidate, LseStrideNegative) {
  a.stride_lse_s = -64;
  EXPECT_TRUE(is_invalid(validate(a), "stride_lse_s: expected >= 64 (the span of the dims inside it), got -64"));
}

TEST_F(SparsePrefillValidate, MoreThan128HeadsNotSupported) {
  a = sparse_prefill_args({.h_q = 192});
  EXPECT_TRUE(is_not_supported(validate(a), "h_q: expected at most 128 (the sparse kernels' limit), got 192"));
}

TEST_F(SparsePrefillValidate, SeveralKvHeadsNotSupported) {
  a = sparse_prefill_args({.h_kv = 2});
  EXPECT_TRUE(is_not_supported(validate(a), "h_kv: expected 1 (MLA: one shared latent head), got 2"));
}

TEST_F(SparsePrefillValidate, TopkNotAMultipleOf64NotSupported) {
  a = sparse_prefill_args({.topk = 2000});
  EXPECT_TRUE(is_not_supported(validate(a), "topk: expected a multiple of 64 (the kernels' index tile), got 2000"));
}

TEST_F(SparsePrefillValidate, Dqk640NotSupported) {
  a = sparse_prefill_args({.d_qk = 640});
  EXPECT_TRUE(is_not_supported(validate(a), "d_qk: expected 576 or 512 (the d_qk the kernels are built for), got 640"));
}

}  // namespace
}  // namespace flashmla::test
