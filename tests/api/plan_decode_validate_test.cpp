// validate(PlanDecodeArgs): one test per rule, each breaking exactly that
// rule of an otherwise valid plan.
#include <gtest/gtest.h>

#include "api/status_matchers.h"
#include "api/valid_args.h"

namespace flashmla::test {
namespace {

class PlanDecodeValidate : public ::testing::Test {
 protected:
  PlanDecodeArgs dense = plan_decode_args();
  PlanDecodeArgs sparse = plan_decode_args({.kind = DecodeKind::kSparse, .h_q = 64, .topk = 2048});
};

TEST_F(PlanDecodeValidate, ValidDensePlanIsOk) { EXPECT_TRUE(is_ok(validate(dense))); }

TEST_F(PlanDecodeValidate, ValidSparsePlanIsOk) { EXPECT_TRUE(is_ok(validate(sparse))); }

TEST_F(PlanDecodeValidate, SparsePlanWithoutLengthsAndWithExtraCacheIsOk) {
  sparse = plan_decode_args({.kind = DecodeKind::kSparse, .topk = 128, .extra_topk = 64});
  sparse.lengths = nullptr;  // every request uses all topk indices
  EXPECT_TRUE(is_ok(validate(sparse)));
}

TEST_F(PlanDecodeValidate, EmptyBatchAcceptedWithoutBuffers) {
  dense = plan_decode_args({.b = 0});
  dense.lengths = nullptr;
  dense.schedule = nullptr;
  EXPECT_TRUE(is_ok(validate(dense)));
}

TEST_F(PlanDecodeValidate, UnknownKind) {
  dense.kind = static_cast<DecodeKind>(5);
  EXPECT_TRUE(is_invalid(validate(dense), "kind: expected dense or sparse, got 5"));
}

TEST_F(PlanDecodeValidate, NegativeB) {
  dense.b = -1;
  EXPECT_TRUE(is_invalid(validate(dense), "b: expected >= 0, got -1"));
}

TEST_F(PlanDecodeValidate, ZeroQueryTokens) {
  dense.s_q = 0;
  EXPECT_TRUE(is_invalid(validate(dense), "s_q: expected >= 1, got 0"));
}

TEST_F(PlanDecodeValidate, ZeroSms) {
  dense.num_sms = 0;
  EXPECT_TRUE(is_invalid(validate(dense), "num_sms: expected >= 1, got 0"));
}

TEST_F(PlanDecodeValidate, DenseHeadsNotAMultipleOfKvHeads) {
  dense.h_kv = 3;
  EXPECT_TRUE(is_invalid(validate(dense), "h_q: expected a multiple of h_kv = 3, got 16"));
}

TEST_F(PlanDecodeValidate, DensePlanWithTopk) {
  dense.topk = 64;
  EXPECT_TRUE(is_invalid(validate(dense), "topk: expected 0 for a dense plan, got 64"));
}

TEST_F(PlanDecodeValidate, DensePlanWithExtraTopk) {
  dense.extra_topk = 64;
  EXPECT_TRUE(is_invalid(validate(dense), "extra_topk: expected 0 for a dense plan, got 64"));
}

TEST_F(PlanDecodeValidate, DensePlanWithoutCacheSeqlens) {
  dense.lengths = nullptr;
  EXPECT_TRUE(is_invalid(validate(dense), "lengths: expected a non-null pointer, got nullptr"));
}

TEST_F(PlanDecodeValidate, SparsePlanWithSeveralKvHeads) {
  sparse.h_kv = 2;
  EXPECT_TRUE(is_invalid(validate(sparse), "h_kv: expected 1 for a sparse plan, got 2"));
}

TEST_F(PlanDecodeValidate, SparsePlanWithoutTopk) {
  sparse.topk = 0;
  EXPECT_TRUE(is_invalid(validate(sparse), "topk: expected >= 1, got 0"));
}

TEST_F(PlanDecodeValidate, SparsePlanWithExtraLengthsButNoExtraTopk) {
  sparse.extra_lengths = fake_address<const int32_t>(0x510000);
  EXPECT_TRUE(is_invalid(validate(sparse), "extra_lengths: expected nullptr when extra_topk = 0, got 0x510000"));
}

TEST_F(PlanDecodeValidate, MisalignedLengths) {
  dense.lengths = fake_address<const int32_t>(0x500001);
  EXPECT_TRUE(is_invalid(validate(dense), "lengths: expected a 4-byte aligned pointer, got 0x500001"));
}

TEST_F(PlanDecodeValidate, NullSchedule) {
  dense.schedule = nullptr;
  EXPECT_TRUE(is_invalid(validate(dense), "schedule: expected a non-null pointer, got nullptr"));
}

TEST_F(PlanDecodeValidate, MisalignedSchedule) {
  dense.schedule = fake_address(0x600008);
  EXPECT_TRUE(is_invalid(validate(dense), "schedule: expected a 16-byte aligned pointer, got 0x600008"));
}

TEST_F(PlanDecodeValidate, MoreThan128QueryTokensNotSupported) {
  dense.s_q = 129;
  EXPECT_TRUE(is_not_supported(validate(dense), "s_q: expected at most 128 (the decode kernels' limit), got 129"));
}

TEST_F(PlanDecodeValidate, SparseTopkNotAMultipleOf64NotSupported) {
  sparse.topk = 2047;
  EXPECT_TRUE(is_not_supported(validate(sparse), "topk: expected a multiple of 64 (the kernels' index tile), got 2047"));
}

TEST_F(PlanDecodeValidate, SparseMoreThan128HeadsNotSupported) {
  sparse.h_q = 129;
  EXPECT_TRUE(is_not_supported(validate(sparse), "h_q: expected at most 128 (the sparse kernels' limit), got 129"));
}

}  // namespace
}  // namespace flashmla::test
