// sparse_prefill edge cases on the GPU: bitwise determinism, garbage
// topk_length values, index rows made only of the boundary valid indices
// and the invalid-index zoo, and s_q = 0.
#include <climits>
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "common/random_values.h"
#include "sparse_prefill/sparse_prefill_case.h"

namespace flashmla::test {
namespace {

// The same inputs twice give the same bits in out, max_logits and lse
// (whole buffers, padding included). A large topk, sinks and partial
// lengths, so any order-dependent reduction or split would show.
TEST(GpuSparsePrefill, BitwiseDeterministic) {
  FLASHMLA_REQUIRE_GPU();
  SparsePrefillConfig c = prefill_config(213, 32768, 128, 2048, 576);
  c.with_topk_length = true;
  c.topk_length = mixed_topk_lengths(213, 2048, 21);
  c.attn_sink = mixed_sinks(128);
  c.seed = 7101;
  const SparsePrefillProblem problem = make_sparse_prefill_problem(c);
  DeviceMirror<SparsePrefillArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  HostOutputs first, second;
  ASSERT_NO_FATAL_FAILURE(run_on_gpu(mirror, &first));   // poisons before each run
  ASSERT_NO_FATAL_FAILURE(run_on_gpu(mirror, &second));
  expect_bitwise_equal(first, second, "two runs of the same input");
  // A second upload of the same data (other addresses) gives the same bits too.
  DeviceMirror<SparsePrefillArgs> other = to_device(problem);
  ASSERT_TRUE(other.ok()) << other.error();
  HostOutputs third;
  ASSERT_NO_FATAL_FAILURE(run_on_gpu(other, &third));
  expect_bitwise_equal(first, third, "the same input at other addresses");
}

// topk_length values outside [0, topk] are device data, not trusted: the
// reference clamps them (negative: empty row; past topk: topk). Nothing
// faults, and the INT32_MAX padding past each index row is never read.
TEST(GpuSparsePrefill, GarbageTopkLengthsAreClampedNotTrusted) {
  FLASHMLA_REQUIRE_GPU();
  SparsePrefillConfig c = prefill_config(6, 1000, 16, 128, 576);
  c.with_topk_length = true;
  c.topk_length = {-1, INT32_MIN, 129, INT32_MAX, 1000000, 64};
  c.pad = 8;  // index rows are followed by padding
  c.seed = 7102;
  ASSERT_NO_FATAL_FAILURE(run_prefill_case(c));
}

// Index rows made only of 0, s_kv - 1 (the first and last valid rows) and
// the invalid-index zoo (INT32_MIN, -2, -1, s_kv, s_kv + 1, INT32_MAX): an
// off-by-one in the bounds check reads a NaN row or faults.
TEST(GpuSparsePrefill, BoundaryIndicesAndZooOnly) {
  FLASHMLA_REQUIRE_GPU();
  SparsePrefillConfig c = prefill_config(62, 1000, 64, 128, 512);
  c.seed = 7103;
  SparsePrefillProblem problem = make_sparse_prefill_problem(c);
  const SparsePrefillArgs& a = problem.args;
  std::vector<int32_t> pattern = invalid_index_zoo(a.s_kv);
  pattern.push_back(0);
  pattern.push_back(int32_t(a.s_kv - 1));
  for (int64_t j = 0; j < a.s_q; ++j) {
    for (int64_t k = 0; k < a.topk; ++k) {
      problem.indices[size_t(j * a.stride_indices_s + k)] = pattern[size_t((j + k) % int64_t(pattern.size()))];
    }
  }
  // Rows 0 and s_kv - 1 are now keys: give them values; every other row NaN.
  Rng rng(c.seed + 1);
  for (int64_t t = 0; t < a.s_kv; ++t) {
    for (int64_t d = 0; d < a.d_qk; ++d) {
      problem.kv[size_t(t * a.stride_kv_s + d)] =
          (t == 0 || t == a.s_kv - 1) ? rng.value_bits(DType::kBFloat16) : kNaN16;
    }
  }
  ASSERT_NO_FATAL_FAILURE(run_prefill_problem(problem));
}

// s_q = 0 is legal (spec section 5): run returns ok, launches nothing and
// writes nothing.
TEST(GpuSparsePrefill, EmptyQueryIsANoOp) {
  FLASHMLA_REQUIRE_GPU();
  SparsePrefillConfig c = prefill_config(2, 64, 16, 64, 576);
  c.seed = 7104;
  const SparsePrefillProblem problem = make_sparse_prefill_problem(c);
  DeviceMirror<SparsePrefillArgs> mirror = to_device(problem);
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  SparsePrefillArgs args = mirror.args;
  args.s_q = 0;
  Stream stream;
  ASSERT_TRUE(stream.ok());
  FLASHMLA_ASSERT_CUDA(cudaDeviceSynchronize());
  const Status status = run(args, nullptr, 0, stream.get());
  EXPECT_TRUE(status.ok()) << to_string(status.code) << ": " << status.what();
  FLASHMLA_ASSERT_CUDA(cudaStreamSynchronize(stream.get()));
  FLASHMLA_ASSERT_CUDA(cudaGetLastError());
  HostOutputs got;
  ASSERT_NO_FATAL_FAILURE(download_outputs(mirror, &got));
  int64_t written = 0;
  for (uint16_t bits : got.out) written += bits != kNaN16;
  for (float v : got.lse) written += !std::isnan(v);
  for (float v : got.max_logits) written += !std::isnan(v);
  EXPECT_EQ(written, 0) << "s_q = 0 wrote outputs";
}

}  // namespace
}  // namespace flashmla::test
