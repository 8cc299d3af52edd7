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

// RAII CUDA stream (non-blocking, so a library that launches on the legacy
// default stream instead of the caller's is not silently ordered).
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  bool ok() const { return stream_ != nullptr; }

 private:
  cudaStream_t stream_ = nullptr;
};

// Multiprocessor count of the current device (0 when unknown).
int32_t device_sm_count();

// The host-side plan arguments for a sparse_decode call: kind kSparse, the
// shapes, lengths = args.topk_length (nullptr when absent), topk, extra_topk,
// extra_lengths = args.extra_topk_length. Schedule left null.
PlanDecodeArgs sparse_plan_args(const SparseDecodeArgs& args, int32_t num_sms);

// A plan_decode on the device and the buffers sparse_decode needs with it.
struct SparsePlan {
  PlanDecodeArgs plan;      // device lengths, device schedule
  DecodeSchedule schedule;  // describe_schedule(plan)
  DeviceBuffer schedule_buffer;
  DeviceBuffer workspace;
  int64_t workspace_bytes = 0;
};

// Allocates the schedule (poisoned with 0xCD) for `args` (device pointers)
// planned for `num_sms` SMs (0: the device's count), sets args.schedule,
// allocates workspace_size(args) bytes (poisoned with 0xFF), and checks that
// validate() accepts both calls. Launches nothing.
void prepare_plan(SparseDecodeArgs& args, int32_t num_sms, SparsePlan* plan);

// Enqueues plan_decode then sparse_decode on `stream` (no synchronization).
// Returns "" on success, else which call failed and its status.
std::string enqueue_plan_and_decode(const SparseDecodeArgs& args, const SparsePlan& plan,
                                    cudaStream_t stream);

// Poisons (0xFF, NaN) the whole out and lse buffers, padding included.
void poison_outputs(const DeviceMirror<SparseDecodeArgs>& mirror, cudaStream_t stream);

// Copies the mirror's out and lse (whole buffers) to the host.
void download_outputs(const DeviceMirror<SparseDecodeArgs>& mirror, HostOutputs* got);

// prepare_plan + poison + enqueue + synchronize + download into *got.
void plan_and_run(DeviceMirror<SparseDecodeArgs>& mirror, int32_t num_sms, HostOutputs* got,
                  SparsePlan* plan_out = nullptr);

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
