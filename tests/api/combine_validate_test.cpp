// validate(CombineArgs): one test per rule, each breaking exactly that rule
// of an otherwise valid call.
#include <gtest/gtest.h>

#include "api/status_matchers.h"
#include "api/valid_args.h"

namespace flashmla::test {
namespace {

class CombineValidate : public ::testing::Test {
 protected:
  CombineArgs a = combine_args();
};

TEST_F(CombineValidate, ValidArgsAreOk) { EXPECT_TRUE(is_ok(validate(a))); }

TEST_F(CombineValidate, EmptyBatchAcceptedWithNullPointers) {
  a = combine_args({.b = 0});
  a.out_partial = nullptr;
  a.lse_partial = nullptr;
  a.out = nullptr;
  a.lse = nullptr;
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(CombineValidate, BFloat16PartialsAndFloat16OutAccepted) {
  a = combine_args({.partial_dtype = DType::kBFloat16, .dtype = DType::kFloat16});
  a.attn_sink = fake_address<const float>(0x440000);
  EXPECT_TRUE(is_ok(validate(a)));
}

TEST_F(CombineValidate, ZeroSplits) {
  a.num_splits = 0;
  EXPECT_TRUE(is_invalid(validate(a), "num_splits: expected >= 1, got 0"));
}

TEST_F(CombineValidate, NegativeB) {
  a.b = -1;
  EXPECT_TRUE(is_invalid(validate(a), "b: expected >= 0, got -1"));
}

TEST_F(CombineValidate, ZeroQueryHeads) {
  a.h_q = 0;
  EXPECT_TRUE(is_invalid(validate(a), "h_q: expected >= 1, got 0"));
}

TEST_F(CombineValidate, UnknownPartialDtype) {
  a.partial_dtype = static_cast<DType>(9);
  EXPECT_TRUE(is_invalid(validate(a), "partial_dtype (of out_partial): expected float32, bfloat16 or float16, got unknown dtype (9)"));
}

TEST_F(CombineValidate, UnknownOutDtype) {
  a.dtype = static_cast<DType>(-1);
  EXPECT_TRUE(is_invalid(validate(a), "dtype (of out): expected bfloat16 or float16, got unknown dtype (-1)"));
}

TEST_F(CombineValidate, NullOutPartial) {
  a.out_partial = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "out_partial: expected a non-null pointer, got nullptr"));
}

TEST_F(CombineValidate, NullLsePartial) {
  a.lse_partial = nullptr;
  EXPECT_TRUE(is_invalid(validate(a), "lse_partial: expected a non-null pointer, got nullptr"));
}

TEST_F(CombineValidate, MisalignedOut) {
  a.out = fake_address(0x700008);
  EXPECT_TRUE(is_invalid(validate(a), "out: expected a 16-byte aligned pointer, got 0x700008"));
}

TEST_F(CombineValidate, SplitStrideOverlapsBatch) {
  a.stride_out_partial_split = 16384;
  EXPECT_TRUE(is_invalid(validate(a), "stride_out_partial_split: expected >= 49152 (the span of the dims inside it), got 16384"));
}

TEST_F(CombineValidate, PartialHeadStrideNot16ByteMultiple) {
  a.stride_out_partial_h = 514;  // 2056 bytes
  EXPECT_TRUE(is_invalid(validate(a), "stride_out_partial_h: expected a multiple of 4 elements (16 bytes), got 514"));
}

TEST_F(CombineValidate, LsePartialSplitStrideOverlapsBatch) {
  a.stride_lse_partial_split = 32;
  EXPECT_TRUE(is_invalid(validate(a), "stride_lse_partial_split: expected >= 96 (the span of the dims inside it), got 32"));
}

TEST_F(CombineValidate, Float32OutAccepted) {
  // A float32 out keeps a context-parallel merge at full precision.
  a = combine_args({.dtype = DType::kFloat32});
  EXPECT_TRUE(validate(a).ok()) << validate(a).what();
}

TEST_F(CombineValidate, Dv128NotSupported) {
  a = combine_args({.d_v = 128});
  EXPECT_TRUE(is_not_supported(validate(a), "d_v: expected 512 (the only d_v the kernels are built for), got 128"));
}

}  // namespace
}  // namespace flashmla::test
