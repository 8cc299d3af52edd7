// Shared machinery of the sparse decode GPU tests (issue 5, item 4), after
// tests/dense_decode/dense_case.h: build a problem with the adversarial
// generator (NaN in every byte of every FP8 token no valid position selects,
// invalid-index zoo values and duplicates in the index rows, NaN-poisoned
// outputs), plan it on the GPU with the public plan_decode (kind kSparse),
// run sparse_decode, and check the result against the fp64 CPU reference
// with the spec's bounds (spec section 2).
//
//   TEST(GpuSparseDecode, Something) {
//     FLASHMLA_REQUIRE_GPU();
//     ASSERT_NO_FATAL_FAILURE(run_sparse_case(sparse_config(KVFormat::kFp8V32, 2, 1, 16, 64, 64)));
//   }
//
// Every function that asserts returns void: call it through
// ASSERT_NO_FATAL_FAILURE so a failure stops the test.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "common/decode_run.h"
#include "common/device_mirror.h"
#include "common/gpu.h"
#include "common/outputs.h"
#include "common/problems.h"
#include "common/strided.h"
#include "flashmla/flashmla.h"

namespace flashmla::test::sd {

// q and the dequantized k are about N(0, 1)/10: with the default scale
// 1/sqrt(d_qk) the softmax is flat and a broken max/rescale would pass. 3.0
// (the dense suite's and the reference tests' value) gives logits of std
// ~0.7; kSharpScale puts most of the weight on a few keys.
constexpr float kSpreadScale = 3.0f;
constexpr float kSharpScale = 10.0f;

// A named case: gtest prints it by name.
struct SparseCase {
  std::string name;
  SparseDecodeConfig config;
  // After generation, every main-cache index becomes a zoo value (the extra
  // cache, if any, keeps its valid indices).
  bool main_all_invalid = false;
  friend void PrintTo(const SparseCase& c, std::ostream* os) { *os << c.name; }
};

// A config with the test scale (kSpreadScale) and the generator's defaults
// (15% zoo values, 5% duplicates, no topk_length, no extra cache, no sink).
SparseDecodeConfig sparse_config(KVFormat format, int64_t b, int64_t s_q, int64_t h_q, int64_t topk,
                                 int64_t page_block_size);

// h_q sink values cycling through `pattern` (e.g. {-inf, 0.5, +inf, 6}).
std::vector<float> sink_pattern(int64_t h_q, const std::vector<float>& pattern);

// The page stride a cache of `page_block_size` tokens can use: the packed
// page (P * token bytes, plus 16 * pad) rounded up to 16 bytes, which
// validate() requires of every FP8 page stride. Differs from the packed size
// only for MODEL1 with an odd page size (584 * P = 8 mod 16).
int64_t aligned_page_stride(KVFormat format, int64_t page_block_size, int64_t pad);

// make_sparse_decode_problem, then the page strides of both caches widened
// to aligned_page_stride (pages re-laid, the new bytes NaN).
SparseDecodeProblem make_sparse_case_problem(const SparseDecodeConfig& config);

// Sets every index of the main cache (all topk positions of every row) to a
// zoo value: every row of the main cache is empty.
void make_main_indices_all_invalid(SparseDecodeProblem& problem);

// The problem of a case: make_sparse_case_problem, then main_all_invalid.
SparseDecodeProblem make_case_problem(const SparseCase& c);

// The CPU reference on the problem's host data (timed into the test's
// "reference_seconds" property).
void reference_outputs(const SparseDecodeProblem& problem, HostOutputs* expected);

// A result against an expected one over the given views: out and lse within
// the spec's bounds (NaN/inf positions identical; out not all zero unless the
// expected out is all zero), every row with expected lse = -inf exactly +0
// bits, every row whose head's sink is +inf exactly zero, and nothing
// written into the padding of out or lse.
void expect_matches(const StridedView& out_view, const StridedView& lse_view, const HostOutputs& got,
                    const HostOutputs& expected, const std::vector<float>& attn_sink, const std::string& what);

// expect_matches with the problem's views and sinks.
void expect_matches_reference(const SparseDecodeProblem& problem, const HostOutputs& got,
                              const HostOutputs& expected, const std::string& what);

// Bit-for-bit equality of two results (whole buffers, padding included).
void expect_bitwise_equal(const HostOutputs& a, const HostOutputs& b, const std::string& what);

// The whole pipeline on a prepared problem: mirror, plan for num_sms (0: the
// device's count), run, reference, compare.
void run_sparse_problem(const SparseDecodeProblem& problem, int32_t num_sms_for_plan = 0);

// make_sparse_case_problem(config) then run_sparse_problem.
void run_sparse_case(const SparseDecodeConfig& config, int32_t num_sms_for_plan = 0);

// Cost of a case's fp64 reference in (row, key) pairs:
// b * s_q * h_q * (topk + extra_topk).
int64_t reference_cost(const SparseDecodeConfig& config);

}  // namespace flashmla::test::sd
