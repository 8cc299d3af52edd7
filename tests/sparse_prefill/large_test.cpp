// One large prefill (issue 6, item 2): s_q = 70000 query tokens, 64 heads,
// d_qk 576, so q (2.6e9 elements) and out (2.3e9) pass 2^31 elements and
// every address needs 64-bit arithmetic, and the grid passes 2^16 rows.
// The fp64 reference runs only on a sample of query rows (first, last,
// around 2^15 and 2^16, and random ones), over a compact copy of those rows
// (make_row_subset), and only those rows of the GPU output are compared.
// Every row is still checked cheaply: no NaN/inf in any out element of a
// row with keys, empty rows exactly +0 / -inf, max_logits <= lse <=
// max_logits + ln(count). Skips when the GPU lacks the memory.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sparse_prefill/sparse_prefill_case.h"

namespace flashmla::test {
namespace {

constexpr int64_t kSq = 70000;
constexpr int64_t kSkv = 100000;
constexpr int64_t kHq = 64;
constexpr int64_t kTopk = 128;
constexpr int64_t kDqk = 576;

TEST(GpuSparsePrefillLarge, Sq70000SampledRowsMatchReference) {
  FLASHMLA_REQUIRE_GPU();
  const int64_t needed = kSq * kHq * kDqk * 2 + kSq * kHq * 512 * 2 + kSkv * kDqk * 2 + kSq * kTopk * 4 +
                         kSq * kHq * 8 + (int64_t(1) << 30);
  size_t free_bytes = 0, total_bytes = 0;
  FLASHMLA_ASSERT_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (int64_t(free_bytes) < needed) {
    GTEST_SKIP() << "needs about " << needed << " bytes of GPU memory, " << free_bytes << " free";
  }
  const SparsePrefillProblem problem = make_large_prefill_problem(kSq, kSkv, kHq, kTopk, kDqk, 7201);
  ASSERT_GT(problem.args.s_q * problem.args.stride_q_s, int64_t(1) << 31);
  ASSERT_GT(problem.args.s_q * problem.args.stride_out_s, int64_t(1) << 31);

  HostOutputs got;
  {
    DeviceMirror<SparsePrefillArgs> mirror = to_device(problem);
    ASSERT_TRUE(mirror.ok()) << mirror.error();
    ASSERT_NO_FATAL_FAILURE(run_on_gpu(mirror, &got));
  }
  expect_rows_plausible(problem, got, "s_q 70000, every row");

  const RowSubset subset = make_row_subset(problem, sample_rows(kSq, 240, 7202));
  HostOutputs expected;
  ASSERT_NO_FATAL_FAILURE(reference_outputs(subset, problem, &expected));
  expect_matches_reference(subset.compact, gather_rows(problem, subset, got), expected,
                           "s_q 70000, " + std::to_string(subset.rows.size()) + " sampled rows");
}

}  // namespace
}  // namespace flashmla::test
