// Shared machinery of the sparse_prefill GPU tests (issue 6, item 2): build
// a problem with the adversarial generator (NaN in every KV row that no
// valid index selects, the invalid-index zoo, duplicates, NaN-poisoned
// outputs), run the public flashmla::run(SparsePrefillArgs) on a stream,
// and check out, max_logits and lse against the fp64 CPU reference with
// the bounds of spec section 2.
//
//   TEST(GpuSparsePrefill, Something) {
//     FLASHMLA_REQUIRE_GPU();
//     ASSERT_NO_FATAL_FAILURE(run_prefill_case(prefill_config(62, 1000, 16, 128)));
//   }
//
// Every function that asserts returns void: call it through
// ASSERT_NO_FATAL_FAILURE so a failure stops the test. A run() status other
// than kOk (kNotSupported included) is a failure, never a skip.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "common/device_mirror.h"
#include "common/gpu.h"
#include "common/outputs.h"
#include "common/problems.h"
#include "flashmla/flashmla.h"

namespace flashmla::test {

// q and k elements are N(0, 1)/10: dot(q, k) over 576 dims has std ~0.24.
// The default 1/sqrt(d_qk) gives logits of std 0.01 (a flat softmax that a
// broken max/rescale still passes); 3.0 gives std ~0.72, 10.0 std ~2.4
// (weight on a few keys: the running max matters).
constexpr float kSpreadScale = 3.0f;
constexpr float kSharpScale = 10.0f;

// A named case: gtest prints it by name.
struct PrefillCase {
  std::string name;
  SparsePrefillConfig config;
  friend void PrintTo(const PrefillCase& c, std::ostream* os) { *os << c.name; }
};

// A config with the test scale (kSpreadScale), h_kv = 1, d_v = 512, and the
// generator's default mixture (15% zoo indices, 5% duplicates).
SparsePrefillConfig prefill_config(int64_t s_q, int64_t s_kv, int64_t h_q, int64_t topk, int64_t d_qk = 576);

// s_q lengths for topk_length: 0, topk, 1 and topk - 1 planted at spread
// positions (as many as fit), the rest uniform in [0, topk].
std::vector<int32_t> mixed_topk_lengths(int64_t s_q, int64_t topk, uint64_t seed);

// h_q sinks cycling through -inf, finite (both signs, around the typical
// lse) and +inf.
std::vector<float> mixed_sinks(int64_t h_q);

// Poisons (0xFF, NaN) out, max_logits and lse of a mirror, padding
// included, on `stream`.
void poison_outputs(const DeviceMirror<SparsePrefillArgs>& mirror, cudaStream_t stream);

// Copies out, max_logits and lse (whole buffers, padding included) to the
// host, checking every copy.
void download_outputs(const DeviceMirror<SparsePrefillArgs>& mirror, HostOutputs* got);

// validate + workspace (NaN-poisoned) + poison outputs + run on a fresh
// non-blocking stream + synchronize + download into *got.
void run_on_gpu(const DeviceMirror<SparsePrefillArgs>& mirror, HostOutputs* got);

// The CPU reference on the problem's host data.
void reference_outputs(const SparsePrefillProblem& problem, HostOutputs* expected);

// A GPU result against the reference:
// - out, max_logits, lse within the spec's bounds (NaN/inf positions
//   identical; out not all zero unless the reference is all zero, then
//   exactly 0 everywhere);
// - rows the reference says are empty (lse = -inf): out exactly +0 bits,
//   max_logits and lse exactly -inf;
// - rows whose sink is +inf: out exactly 0 (either sign);
// - nothing written into the padding of out, max_logits or lse.
void expect_matches_reference(const SparsePrefillProblem& problem, const HostOutputs& got,
                              const HostOutputs& expected, const std::string& what);

// Bit-for-bit equality of two results (whole buffers, padding included).
void expect_bitwise_equal(const HostOutputs& a, const HostOutputs& b, const std::string& what);

// Mirror, run, reference, compare.
void run_prefill_problem(const SparsePrefillProblem& problem);
void run_prefill_case(const SparsePrefillConfig& config);

// ----- sampled rows of a large problem -------------------------------------

// The problem restricted to query rows `rows` (any order, no repeats): q,
// indices, topk_length copied into compact buffers, kv shared by pointer
// with `problem` (which must outlive the result). Row r of the result is
// row rows[r] of the problem.
struct RowSubset {
  std::vector<int64_t> rows;
  SparsePrefillProblem compact;  // kv left empty; args.kv points at the source's kv
};
RowSubset make_row_subset(const SparsePrefillProblem& problem, const std::vector<int64_t>& rows);

// The reference on a subset (outputs in the compact layout).
void reference_outputs(const RowSubset& subset, const SparsePrefillProblem& source, HostOutputs* expected);

// Copies rows `subset.rows` of a full-size result into the compact layout.
HostOutputs gather_rows(const SparsePrefillProblem& source, const RowSubset& subset, const HostOutputs& full);

// Cheap checks of every row of a result (no reference): a row is empty iff
// it has no valid position (index in [0, s_kv) below its topk_length); an
// empty row has out exactly +0, max_logits = lse = -inf; any other row has
// every out element finite and |out| <= 1 (a convex combination of values
// in [-1, 1], shrunk by a sink), finite max_logits and lse with
// max_logits <= lse <= max_logits + ln(count) (count = its valid positions)
// up to the lse tolerance.
void expect_rows_plausible(const SparsePrefillProblem& problem, const HostOutputs& got, const std::string& what);

// Whether row j of the problem has at least one valid position.
bool row_has_valid_key(const SparsePrefillProblem& problem, int64_t j, int64_t* count = nullptr);

// A large problem built quickly: q rows are slices of a random pool (so a
// 2.6e9-element q takes seconds, not minutes), indices from fill_index_row,
// topk_length from mixed_topk_lengths, kv NaN except rows some valid
// position selects. Same layout as make_sparse_prefill_problem (pad 0).
SparsePrefillProblem make_large_prefill_problem(int64_t s_q, int64_t s_kv, int64_t h_q, int64_t topk,
                                                int64_t d_qk, uint64_t seed);

// The rows the large test checks against the reference: the first and last
// rows, rows around 2^15 and 2^16, and `random_rows` more, sorted.
std::vector<int64_t> sample_rows(int64_t s_q, int64_t random_rows, uint64_t seed);

}  // namespace flashmla::test
