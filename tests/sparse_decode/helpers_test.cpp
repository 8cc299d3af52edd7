// CPU checks of the GPU tests' own machinery (no GPU needed): the result
// check accepts the reference itself and catches each kind of kernel bug it
// is there for, and the generated inputs are what the GPU tests claim (NaN
// in every byte no valid position selects, 16-byte page strides), so a
// passing GPU run means something.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <cstring>
#include <limits>
#include <vector>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "common/random_values.h"
#include "flashmla_ref/fp8_format.h"
#include "flashmla_ref/numeric.h"
#include "flashmla_ref/reference.h"
#include "sparse_decode/sparse_case.h"

namespace flashmla::test::sd {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

class SparseCaseHelpers : public ::testing::Test {
 protected:
  void SetUp() override {
    // Request 0 empty (both caches); request 1 one main key and three extra;
    // request 2 full. Head 2's sink is +inf. Padded strides, odd pages.
    SparseDecodeConfig c = sparse_config(KVFormat::kFp8V32, 3, 2, 4, 64, 53);
    c.with_topk_length = true;
    c.topk_length = {0, 1, 64};
    c.extra_topk = 64;
    c.extra_page_block_size = 2;
    c.with_extra_topk_length = true;
    c.extra_topk_length = {0, 3, 64};
    c.attn_sink = {-kInf, 0.5f, kInf, 6.0f};
    c.pad = 8;
    problem_ = make_sparse_case_problem(c);
    ASSERT_NO_FATAL_FAILURE(reference_outputs(problem_, &expected_));
    got_ = expected_;
  }
  size_t out_at(int64_t i, int64_t j, int64_t h, int64_t d) const {
    const SparseDecodeArgs& a = problem_.args;
    return size_t(i * a.stride_out_b + j * a.stride_out_s + h * a.stride_out_h + d);
  }

  SparseDecodeProblem problem_;
  HostOutputs expected_, got_;
};

TEST_F(SparseCaseHelpers, ReferenceMatchesItself) {
  expect_matches_reference(problem_, got_, expected_, "self");
  expect_bitwise_equal(got_, expected_, "self");
}

TEST_F(SparseCaseHelpers, FixtureHasEmptyRowsAndPlusInfSinkRows) {
  const SparseDecodeArgs& a = problem_.args;
  for (int64_t j = 0; j < a.s_q; ++j) {
    for (int64_t h = 0; h < a.h_q; ++h) {
      EXPECT_EQ(expected_.lse[size_t(0 * a.stride_lse_b + h * a.stride_lse_h + j)], -kInf);
      EXPECT_TRUE(std::isfinite(expected_.lse[size_t(2 * a.stride_lse_b + h * a.stride_lse_h + j)]));
    }
  }
  // +inf sink: out exactly zero, lse untouched by the sink (finite).
  for (int64_t d = 0; d < a.d_v; ++d) EXPECT_EQ(expected_.out[out_at(2, 1, 2, d)] & 0x7FFF, 0) << d;
}

TEST_F(SparseCaseHelpers, NegativeZeroInAnEmptyRowIsCaught) {
  got_.out[out_at(0, 1, 3, 5)] = 0x8000;
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "not exactly +0");
}

TEST_F(SparseCaseHelpers, TinyValueUnderAPlusInfSinkIsCaught) {
  got_.out[out_at(2, 0, 2, 9)] = 0x0001;  // within the tolerance, but not zero
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "+inf-sink head");
}

TEST_F(SparseCaseHelpers, WrittenPaddingIsCaught) {
  got_.out[out_at(2, 1, 0, problem_.args.d_v)] = 0;
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "out padding was written");
}

TEST_F(SparseCaseHelpers, WrongValueIsCaught) {
  uint16_t& v = got_.out[out_at(2, 1, 1, 7)];
  v = ref::float_to_bf16(ref::bf16_to_float(v) + 0.05f);
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "out of bounds");
}

TEST_F(SparseCaseHelpers, UnwrittenElementIsCaught) {
  got_.out[out_at(1, 0, 0, 511)] = kNaN16;
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "NaN/inf position");
}

TEST_F(SparseCaseHelpers, WrongLseIsCaught) {
  const SparseDecodeArgs& a = problem_.args;
  got_.lse[size_t(2 * a.stride_lse_b + 1 * a.stride_lse_h + 1)] += 0.01f;
  EXPECT_NONFATAL_FAILURE(expect_matches_reference(problem_, got_, expected_, "x"), "lse");
}

TEST_F(SparseCaseHelpers, BitwiseComparisonSeesOneUlp) {
  HostOutputs other = got_;
  float& lse = other.lse[size_t(2 * problem_.args.stride_lse_b)];
  uint32_t bits;
  std::memcpy(&bits, &lse, 4);
  ++bits;
  std::memcpy(&lse, &bits, 4);
  EXPECT_NONFATAL_FAILURE(expect_bitwise_equal(got_, other, "x"), "lse differs in 1");
}

// ----------------------------------------------------------------------------
// The generated caches: every byte of every token that no valid position
// selects is NaN (0xFF), as is the page padding and MODEL1's pad byte, so a
// kernel that reads a masked token or a position past topk_length shows.

// Tokens of one cache selected by a valid position (< length, in range).
std::vector<char> used_tokens(const int32_t* indices, int64_t b, int64_t s_q, int64_t stride_b, int64_t stride_s,
                              int64_t topk, const std::vector<int32_t>& lengths, int64_t capacity) {
  std::vector<char> used(static_cast<size_t>(capacity), 0);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t len = lengths.empty() ? topk : std::clamp<int64_t>(lengths[size_t(i)], 0, topk);
    for (int64_t j = 0; j < s_q; ++j)
      for (int64_t k = 0; k < len; ++k) {
        const int32_t t = indices[i * stride_b + j * stride_s + k];
        if (t >= 0 && t < capacity) used[size_t(t)] = 1;
      }
  }
  return used;
}

// Counts bytes of unused tokens, page padding and MODEL1 pad bytes that are
// not 0xFF.
int64_t non_nan_unused_bytes(KVFormat format, const std::vector<uint8_t>& kv, int64_t num_blocks, int64_t page,
                             int64_t stride, const std::vector<char>& used) {
  int64_t bad = 0;
  const int64_t token_bytes = kv_format_token_bytes(format);
  for (int64_t p = 0; p < num_blocks; ++p) {
    const uint8_t* base = kv.data() + p * stride;
    for (int64_t r = 0; r < page; ++r) {
      const bool is_used = used[size_t(p * page + r)] != 0;
      if (format == KVFormat::kFp8V32) {
        if (!is_used)
          for (int64_t k = 0; k < token_bytes; ++k) bad += base[r * token_bytes + k] != kNaNByte;
      } else {
        if (!is_used) {
          for (int64_t k = 0; k < 576; ++k) bad += base[576 * r + k] != kNaNByte;
          for (int64_t k = 0; k < 7; ++k) bad += base[576 * page + 8 * r + k] != kNaNByte;
        }
        bad += base[576 * page + 8 * r + 7] != kNaNByte;  // the pad byte, used or not
      }
    }
    for (int64_t k = page * token_bytes; k < stride; ++k) bad += base[k] != kNaNByte;
  }
  return bad;
}

TEST(SparseDecodeInputs, EveryUnusedByteIsNaN) {
  for (KVFormat format : {KVFormat::kFp8V32, KVFormat::kFp8Model1}) {
    for (int64_t page : {2, 53, 69}) {
      SparseDecodeConfig c = sparse_config(format, 3, 2, 4, 128, page);
      c.with_topk_length = true;
      c.topk_length = {128, 0, 40};
      c.extra_topk = 64;
      c.extra_page_block_size = 69;
      c.with_extra_topk_length = true;
      c.extra_topk_length = {3, 64, 0};
      c.pad = 8;
      const SparseDecodeProblem p = make_sparse_case_problem(c);
      const SparseDecodeArgs& a = p.args;
      SCOPED_TRACE(std::string(to_string(format)) + ", page " + std::to_string(page));
      EXPECT_EQ(a.stride_kv_block % 16, 0);
      EXPECT_EQ(a.stride_extra_kv_block % 16, 0);
      const int64_t cap = a.num_blocks * page;
      const std::vector<char> used = used_tokens(p.indices.data(), a.b, a.s_q, a.stride_indices_b,
                                                 a.stride_indices_s, a.topk, p.topk_length, cap);
      EXPECT_EQ(non_nan_unused_bytes(format, p.kv, a.num_blocks, page, a.stride_kv_block, used), 0);
      const int64_t extra_cap = a.extra_num_blocks * a.extra_page_block_size;
      const std::vector<char> extra_used =
          used_tokens(p.extra_indices.data(), a.b, a.s_q, a.stride_extra_indices_b, a.stride_extra_indices_s,
                      a.extra_topk, p.extra_topk_length, extra_cap);
      EXPECT_EQ(non_nan_unused_bytes(format, p.extra_kv, a.extra_num_blocks, a.extra_page_block_size,
                                     a.stride_extra_kv_block, extra_used),
                0);
      // Some tokens are reached only by positions past topk_length (request
      // 1 has length 0): those are NaN too, which is what tests the masking.
      int64_t used_count = 0;
      for (char u : used) used_count += u;
      EXPECT_GT(used_count, 0);
      // q padding is NaN.
      if (a.stride_q_h > a.d_qk) EXPECT_EQ(p.q[size_t(a.d_qk)], kNaN16);
    }
  }
}

// Widening MODEL1's odd page stride to 16 bytes moves pages, not tokens: the
// reference gives the same bits before and after.
TEST(SparseDecodeInputs, AlignedPageStrideKeepsTheResult) {
  SparseDecodeConfig c = sparse_config(KVFormat::kFp8Model1, 2, 1, 4, 64, 53);
  c.extra_topk = 64;
  c.extra_page_block_size = 69;
  const SparseDecodeProblem packed = make_sparse_decode_problem(c);
  const SparseDecodeProblem aligned = make_sparse_case_problem(c);
  EXPECT_EQ(packed.args.stride_kv_block, 53 * 584);
  EXPECT_EQ(aligned.args.stride_kv_block, 53 * 584 + 8);
  EXPECT_EQ(aligned.args.stride_extra_kv_block, 69 * 584 + 8);
  EXPECT_EQ(aligned_page_stride(KVFormat::kFp8V32, 53, 0), 53 * 656);
  EXPECT_EQ(aligned_page_stride(KVFormat::kFp8Model1, 64, 0), 64 * 584);
  HostOutputs a = packed.make_outputs(), b = aligned.make_outputs();
  ASSERT_TRUE(ref::sparse_decode(packed.host_args(a)).ok());
  ASSERT_TRUE(ref::sparse_decode(aligned.host_args(b)).ok());
  expect_bitwise_equal(a, b, "packed vs aligned page stride");
}

TEST(SparseDecodeInputs, AllInvalidMainIndicesAreZooValues) {
  SparseDecodeConfig c = sparse_config(KVFormat::kFp8V32, 3, 2, 4, 64, 64);
  SparseDecodeProblem p = make_sparse_case_problem(c);
  make_main_indices_all_invalid(p);
  const SparseDecodeArgs& a = p.args;
  const int64_t cap = a.num_blocks * a.page_block_size;
  for (int64_t i = 0; i < a.b; ++i)
    for (int64_t j = 0; j < a.s_q; ++j)
      for (int64_t k = 0; k < a.topk; ++k) {
        const int32_t t = p.indices[size_t(i * a.stride_indices_b + j * a.stride_indices_s + k)];
        EXPECT_TRUE(t < 0 || t >= cap) << i << " " << j << " " << k << ": " << t;
      }
}

}  // namespace
}  // namespace flashmla::test::sd
