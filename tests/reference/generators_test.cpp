// The input generators really are adversarial: NaN wherever no valid key
// lives, garbage page ids, every zoo value present, poisoned outputs.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "common/problems.h"
#include "flashmla_ref/numeric.h"

namespace flashmla::test {
namespace {

TEST(Generators, DensePoolHasNaNOutsideValidKeys) {
  DenseDecodeConfig c;
  c.b = 3;
  c.h_q = 2;
  c.seqlens = {0, 65, 10};
  c.pad = 1;
  const DenseDecodeProblem p = make_dense_decode_problem(c);
  const DenseDecodeArgs& a = p.args;
  std::set<int64_t> valid_rows;  // page * page_block_size + row of every valid key
  for (int64_t i = 0; i < a.b; ++i) {
    const int64_t pages = (p.cache_seqlens[size_t(i)] + 63) / 64;
    for (int64_t col = 0; col < a.max_blocks_per_seq; ++col) {
      const int32_t page = p.block_table[size_t(i * a.stride_block_table_b + col)];
      if (col < pages) {
        EXPECT_TRUE(page >= 0 && page < a.num_blocks);
      } else {
        EXPECT_TRUE(page < 0 || page >= a.num_blocks) << "unused slot holds a real page id " << page;
      }
    }
    for (int64_t t = 0; t < p.cache_seqlens[size_t(i)]; ++t)
      valid_rows.insert(p.block_table[size_t(i * a.stride_block_table_b + t / 64)] * 64 + t % 64);
  }
  int64_t nan_elements = 0;
  for (int64_t page = 0; page < a.num_blocks; ++page) {
    for (int64_t row = 0; row < 64; ++row) {
      for (int64_t d = 0; d < a.d_qk; ++d) {
        uint16_t bits;
        std::memcpy(&bits, p.kv.data() + 2 * (page * a.stride_kv_block + row * a.stride_kv_row + d), 2);
        const bool nan = std::isnan(ref::bf16_to_float(bits));
        ASSERT_EQ(nan, valid_rows.count(page * 64 + row) == 0) << "page " << page << " row " << row;
        nan_elements += nan;
      }
    }
  }
  EXPECT_GT(nan_elements, 0);
  // Row padding of q is NaN too.
  EXPECT_TRUE(std::isnan(ref::bf16_to_float(p.q[size_t(a.d_qk)])));
}

TEST(Generators, SparseIndicesHoldTheWholeZoo) {
  SparseDecodeConfig c;
  c.b = 4;
  c.s_q = 2;
  c.topk = 256;
  c.invalid_fraction = 0.3;
  const SparseDecodeProblem p = make_sparse_decode_problem(c);
  const int64_t capacity = p.args.num_blocks * p.args.page_block_size;
  std::set<int32_t> seen(p.indices.begin(), p.indices.end());
  for (int32_t bad : {INT32_MIN, -2, -1, int32_t(capacity), int32_t(capacity + 1), INT32_MAX})
    EXPECT_TRUE(seen.count(bad)) << bad;
  // Some valid index repeats within a row (duplicates).
  bool duplicate = false;
  for (int64_t r = 0; r < c.b * c.s_q && !duplicate; ++r) {
    std::set<int32_t> row;
    for (int64_t k = 0; k < c.topk; ++k) {
      const int32_t index = p.indices[size_t(r * p.args.stride_indices_s + k)];
      if (index >= 0 && index < capacity && !row.insert(index).second) duplicate = true;
    }
  }
  EXPECT_TRUE(duplicate);
}

TEST(Generators, SparseUnusedTokensAreAllNaNBytes) {
  for (KVFormat format : {KVFormat::kFp8V32, KVFormat::kFp8Model1}) {
    SparseDecodeConfig c;
    c.kv_format = format;
    c.b = 2;
    c.topk = 64;
    c.page_block_size = 53;
    c.with_topk_length = true;
    c.topk_length = {10, 30};
    const SparseDecodeProblem p = make_sparse_decode_problem(c);
    const int64_t capacity = p.args.num_blocks * 53;
    std::vector<char> used(size_t(capacity), 0);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t k = 0; k < c.topk_length[size_t(i)]; ++k) {
        const int32_t index = p.indices[size_t(i * p.args.stride_indices_b + k)];
        if (index >= 0 && index < capacity) used[size_t(index)] = 1;
      }
    int64_t unused = 0;
    for (int64_t index = 0; index < capacity; ++index) {
      const uint8_t* page = p.kv.data() + (index / 53) * p.args.stride_kv_block;
      const int64_t row = index % 53;
      std::vector<uint8_t> bytes;
      if (format == KVFormat::kFp8V32) {
        bytes.assign(page + 656 * row, page + 656 * (row + 1));
      } else {
        bytes.assign(page + 576 * row, page + 576 * (row + 1));
        bytes.insert(bytes.end(), page + 576 * 53 + 8 * row, page + 576 * 53 + 8 * row + 7);
        EXPECT_EQ(page[576 * 53 + 8 * row + 7], 0xFF) << "pad byte";
      }
      const bool all_nan = std::all_of(bytes.begin(), bytes.end(), [](uint8_t v) { return v == 0xFF; });
      ASSERT_EQ(all_nan, !used[size_t(index)]) << "token " << index;
      unused += !used[size_t(index)];
    }
    EXPECT_GT(unused, 0);
  }
}

TEST(Generators, PrefillUnselectedRowsAreNaN) {
  SparsePrefillConfig c;
  c.s_q = 2;
  c.s_kv = 300;
  c.topk = 64;
  const SparsePrefillProblem p = make_sparse_prefill_problem(c);
  std::vector<char> used(300, 0);
  for (int64_t j = 0; j < 2; ++j)
    for (int64_t k = 0; k < 64; ++k) {
      const int32_t index = p.indices[size_t(j * p.args.stride_indices_s + k)];
      if (index >= 0 && index < 300) used[size_t(index)] = 1;
    }
  for (int64_t t = 0; t < 300; ++t) {
    ASSERT_EQ(std::isnan(ref::bf16_to_float(p.kv[size_t(t * p.args.stride_kv_s)])), !used[size_t(t)]) << t;
  }
}

TEST(Generators, OutputsArePoisonedAndSeedsReproduce) {
  SparsePrefillConfig c;
  c.pad = 2;
  const SparsePrefillProblem p = make_sparse_prefill_problem(c);
  HostOutputs outputs = p.make_outputs();
  for (uint16_t v : outputs.out) ASSERT_EQ(v, kNaN16);
  for (float v : outputs.lse) ASSERT_TRUE(std::isnan(v));
  for (float v : outputs.max_logits) ASSERT_TRUE(std::isnan(v));
  EXPECT_EQ(int64_t(outputs.out.size()), p.out_view().storage() + 2 * 2);  // the last row's pads
  const SparsePrefillProblem again = make_sparse_prefill_problem(c);
  EXPECT_EQ(p.q, again.q);
  EXPECT_EQ(p.indices, again.indices);
  c.seed = 2;
  EXPECT_NE(make_sparse_prefill_problem(c).q, p.q);
}

}  // namespace
}  // namespace flashmla::test
