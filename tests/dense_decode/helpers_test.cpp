// CPU checks of the GPU tests' own machinery (no GPU needed): the result
// check accepts the reference itself and catches each kind of kernel bug it
// is there for, so a passing GPU run means something.
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "dense_decode/dense_case.h"
#include "flashmla_ref/numeric.h"

namespace flashmla::test {
namespace {

class DenseCaseHelpers : public ::testing::Test {
 protected:
  void SetUp() override {
    // Request 0 empty; request 1 (length 1, causal s_q 2) has an empty
    // token 0; request 2 is full. Padded strides.
    DenseDecodeConfig c = dense_config(3, 2, 4, 2, {0, 1, 70}, DType::kBFloat16, true);
    c.pad = 8;
    problem_ = make_dense_decode_problem(c);
    ASSERT_NO_FATAL_FAILURE(reference_outputs(problem_, &expected_));
    got_ = expected_;
  }
  // Storage index of out[i][j][h][d].
  size_t out_at(int64_t i, int64_t j, int64_t h, int64_t d) const {
    const DenseDecodeArgs& a = problem_.args;
    return size_t(i * a.stride_out_b + j * a.stride_out_s + h * a.stride_out_h + d);
  }

  DenseDecodeProblem problem_;
  HostOutputs expected_, got_;
};

TEST_F(DenseCaseHelpers, ReferenceMatchesItself) {
  expect_matches_reference(problem_, got_, expected_, "self");
  expect_bitwise_equal(got_, expected_, "self");
}

TEST_F(DenseCaseHelpers, NegativeZeroInAnEmptyRowIsCaught) {
  got_.out[out_at(1, 0, 3, 5)] = 0x8000;  // -0 in request 1, token 0 (empty)
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "not exactly +0");
}

TEST_F(DenseCaseHelpers, WrittenPaddingIsCaught) {
  got_.out[out_at(2, 1, 0, problem_.args.d_v)] = 0;  // between heads 0 and 1
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "out padding was written");
}

TEST_F(DenseCaseHelpers, WrongValueIsCaught) {
  uint16_t& v = got_.out[out_at(2, 1, 1, 7)];
  v = ref::float_to_bf16(ref::bf16_to_float(v) + 0.05f);
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "out of bounds");
}

TEST_F(DenseCaseHelpers, UnwrittenElementIsCaught) {
  got_.out[out_at(2, 0, 2, 511)] = kNaN16;  // the poison a kernel forgot to overwrite
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "NaN/inf position");
}

TEST_F(DenseCaseHelpers, WrongLseIsCaught) {
  const DenseDecodeArgs& a = problem_.args;
  got_.lse[size_t(2 * a.stride_lse_b + 1 * a.stride_lse_h + 1)] += 0.01f;
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "lse");
}

TEST_F(DenseCaseHelpers, BitwiseComparisonSeesOneUlp) {
  HostOutputs other = got_;
  float& lse = other.lse[size_t(2 * problem_.args.stride_lse_b)];
  uint32_t bits;
  std::memcpy(&bits, &lse, 4);
  ++bits;
  std::memcpy(&lse, &bits, 4);
  EXPECT_NONFATAL_FAILURE(expect_bitwise_equal(got_, other, "x"), "lse differs in 1");
}

TEST(DenseCaseLengths, MixedLengthsPlantBoundariesWithinRange) {
  const std::vector<int32_t> lengths = mixed_lengths(64, 1000, 3000, 5);
  ASSERT_EQ(lengths.size(), 64u);
  const std::set<int32_t> distinct(lengths.begin(), lengths.end());
  for (int32_t boundary : {0, 1, 63, 64, 65, 140}) EXPECT_TRUE(distinct.count(boundary)) << boundary;
  int64_t in_range = 0;
  for (int32_t len : lengths) in_range += len >= 1000 && len <= 3000;
  EXPECT_EQ(in_range, 64 - 6);
  for (int32_t len : mixed_lengths(133, 0, 600, 5, false)) {
    EXPECT_GE(len, 0);
    EXPECT_LE(len, 600);
  }
}

}  // namespace
}  // namespace flashmla::test
