// Helpers shared by the reference tests: run the reference on a problem
// and compare it with the brute force, at a tolerance much tighter than the
// spec's (both are fp64; only the final rounding of out to bf16/fp16,
// at most half an ulp = 2^-8 relative, separates them).
#pragma once

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "common/compare.h"
#include "common/problems.h"
#include "flashmla_ref/reference.h"
#include "reference/brute_force.h"

namespace flashmla::test {

inline CompareOptions tight_out_options(const StridedView& view, bool expect_empty) {
  CompareOptions options;
  options.shape = view.shape;
  // Half an ulp of fp16 subnormals is 2^-25; bf16/fp16 rounding alone puts
  // the cosine distance near 1e-6, so the spec's bound stays.
  options.abs_tol = 3e-8;
  options.rel_tol = 1.0 / 250.0;
  options.max_cos_distance = 5e-6;
  options.expect_empty = expect_empty;
  return options;
}

inline CompareOptions tight_lse_options(const StridedView& view, const char* name = "lse") {
  CompareOptions options = lse_options(name, view.shape);
  options.abs_tol = 1e-6;
  options.rel_tol = 1e-6;
  return options;
}

inline bool all_zero(const std::vector<double>& values) {
  for (double v : values) {
    if (v != 0.0) return false;
  }
  return true;
}

// Runs the reference on a problem and checks it against the brute force;
// also checks the reference wrote every logical element and no padding.
template <typename Problem>
void expect_matches_brute(const Problem& problem, const BruteResult& brute, HostOutputs& outputs,
                          bool allow_empty = false) {
  const std::vector<double> out = gather(problem.out_view(), outputs.out.data());
  const std::vector<double> lse = gather(problem.lse_view(), outputs.lse.data());
  const bool empty = all_zero(brute.out);
  if (!allow_empty) EXPECT_FALSE(empty) << "the case is accidentally empty";
  EXPECT_TRUE(compare_out(out, brute.out, tight_out_options(problem.out_view(), empty)).assertion());
  EXPECT_TRUE(compare_lse(lse, brute.lse, tight_lse_options(problem.lse_view())).assertion());
  EXPECT_EQ(written_padding(problem.out_view(), outputs.out.data()), 0);
  EXPECT_EQ(written_padding(problem.lse_view(), outputs.lse.data()), 0);
}

// Overwrites every unused FP8 token (all bytes 0xFF), page padding and
// MODEL1 pad byte with 0x7E (e4m3 448, huge scales and bf16 values), and
// returns how many bytes changed. Used tokens keep their bytes, even the
// 0xFF bytes a bf16 RoPE value can hold.
inline int64_t replace_unused_fp8_bytes(std::vector<uint8_t>& kv, KVFormat format, int64_t page_block_size,
                                        int64_t num_blocks, int64_t stride_block) {
  const int64_t token_bytes = format == KVFormat::kFp8V32 ? 656 : 584;
  int64_t changed = 0;
  auto set = [&](int64_t at) {
    if (kv[size_t(at)] != 0x7E) ++changed;
    kv[size_t(at)] = 0x7E;
  };
  for (int64_t page = 0; page < num_blocks; ++page) {
    const int64_t base = page * stride_block;
    for (int64_t row = 0; row < page_block_size; ++row) {
      std::vector<int64_t> bytes;  // offsets of the token's bytes
      if (format == KVFormat::kFp8V32) {
        for (int64_t k = 0; k < 656; ++k) bytes.push_back(base + 656 * row + k);
      } else {
        for (int64_t k = 0; k < 576; ++k) bytes.push_back(base + 576 * row + k);
        for (int64_t k = 0; k < 7; ++k) bytes.push_back(base + 576 * page_block_size + 8 * row + k);
        set(base + 576 * page_block_size + 8 * row + 7);
      }
      bool unused = true;
      for (int64_t at : bytes) unused = unused && kv[size_t(at)] == 0xFF;
      if (unused) {
        for (int64_t at : bytes) set(at);
      }
    }
    for (int64_t at = base + page_block_size * token_bytes; at < base + stride_block; ++at) set(at);
  }
  return changed;
}

}  // namespace flashmla::test
