// Shared machinery of the dense decode GPU tests: build a problem with the
// adversarial generator (NaN in every non-key KV slot, garbage page ids in
// unused block-table slots, NaN-poisoned outputs), plan it on the GPU with
// the public plan_decode, run dense_decode, and check the result against the
// fp64 CPU reference with the spec's bounds (spec section 2).
//
//   TEST(GpuDenseDecode, Something) {
//     FLASHMLA_REQUIRE_GPU();
//     ASSERT_NO_FATAL_FAILURE(run_dense_case(dense_config(2, 1, 16, 1, {64, 65})));
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
#include "flashmla/flashmla.h"

namespace flashmla::test {

// q and k elements are N(0, 1)/10, so dot(q, k) over 576 dims has a standard
// deviation of about 0.1 * 0.1 * sqrt(576) = 0.24. The default scale
// 1/sqrt(576) leaves logits of std 0.01: a flat softmax that a kernel with a
// broken max/rescale would still pass. 3.0 (the reference tests' value)
// gives std 0.72; kSharpScale (std 2.4) puts most of the weight on a few
// hundred keys and makes the running-max rescaling of long rows matter.
constexpr float kSpreadScale = 3.0f;
constexpr float kSharpScale = 10.0f;

// A named case: gtest prints it by name.
struct DenseCase {
  std::string name;
  DenseDecodeConfig config;
  friend void PrintTo(const DenseCase& c, std::ostream* os) { *os << c.name; }
};

// A config with the test scale (kSpreadScale) and everything else default.
DenseDecodeConfig dense_config(int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv,
                               std::vector<int32_t> seqlens, DType dtype = DType::kBFloat16,
                               bool causal = false);

// b lengths, uniform in [lo, hi], with the boundary lengths 0, 1, 63, 64, 65
// and 140 planted at spread positions (as many as fit, when with_boundaries).
std::vector<int32_t> mixed_lengths(int64_t b, int32_t lo, int32_t hi, uint64_t seed,
                                   bool with_boundaries = true);

// The CPU reference on the problem's host data (timed into the test's
// "reference_seconds" property).
void reference_outputs(const DenseDecodeProblem& problem, HostOutputs* expected);

// A GPU result against the reference: out and lse within the spec's bounds
// (compare_out/compare_lse, NaN/inf positions identical, not all zero unless
// every row is empty), every empty row exactly +0 bits, and nothing written
// into the padding of out or lse.
void expect_matches_reference(const DenseDecodeProblem& problem, const HostOutputs& got,
                              const HostOutputs& expected, const std::string& what);

// Two GPU results of the same inputs within the spec's bounds of each other
// (the split path against the unsplit one).
void expect_within_spec_of_each_other(const DenseDecodeProblem& problem, const HostOutputs& a,
                                      const HostOutputs& b, const std::string& what);

// Bit-for-bit equality of two GPU results (whole buffers, padding included).
void expect_bitwise_equal(const HostOutputs& a, const HostOutputs& b, const std::string& what);

// A case is a valid, supported input (shapes, strides, alignment) for
// plan_decode and dense_decode, so a GPU failure is the kernel's and not the
// test's. Checked without a GPU; b and the lengths are capped to keep it
// cheap (strides and alignment do not depend on them).
void expect_case_validates(const DenseCase& c);

// The whole pipeline on a prepared problem: mirror, plan for num_sms (0: the
// device's count), run, reference, compare.
void run_dense_problem(const DenseDecodeProblem& problem, int32_t num_sms_for_plan = 0);

// make_dense_decode_problem(config) then run_dense_problem.
void run_dense_case(const DenseDecodeConfig& config, int32_t num_sms_for_plan = 0);

}  // namespace flashmla::test
