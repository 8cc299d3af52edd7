// Running a decode operation the way an engine does, for the GPU tests of
// dense and sparse decode: plan_decode on the device into a poisoned
// schedule, a poisoned workspace, outputs poisoned with NaN, both calls on a
// non-blocking stream, then the whole out and lse buffers back.
//
// Every function that asserts returns void: call it through
// ASSERT_NO_FATAL_FAILURE so a failure stops the test.
#pragma once

#include <cstdint>
#include <string>

#include <cuda_runtime_api.h>

#include "common/device_mirror.h"
#include "common/gpu.h"
#include "common/outputs.h"
#include "flashmla/flashmla.h"

namespace flashmla::test {

// The host-side plan arguments of a call (kind, shapes, device lengths;
// schedule left null) for `num_sms` SMs. Sparse: lengths = topk_length
// (nullptr when absent), topk, and extra_topk / extra_lengths when the extra
// cache is present.
PlanDecodeArgs dense_plan_args(const DenseDecodeArgs& args, int32_t num_sms);
PlanDecodeArgs sparse_plan_args(const SparseDecodeArgs& args, int32_t num_sms);

// More partials than two round trips of the combine's loads cover for a warp
// of 512 dims (kernels/combine/kernel.cuh: 4 in flight): the split tests'
// premise for rows the one-warp-per-row combine merges in several trips.
constexpr int32_t kManyPartials = 8;

// The most partial slots any of the b requests of a planned schedule has,
// from its split_begin[b + 1] (host memory; internal layout,
// common/decode_schedule.h).
int32_t max_partials_of_a_request(const int32_t* split_begin, int64_t b);

// validate() of plan_decode for `args` (host pointers are enough) planned for
// 132 SMs, into a schedule buffer that is never written, and of the call
// itself with that plan's schedule; EXPECTs naming `name`. Needs no GPU.
void expect_plan_and_call_validate(DenseDecodeArgs args, const std::string& name);
void expect_plan_and_call_validate(SparseDecodeArgs args, const std::string& name);

// A plan_decode on the device and the buffers the decode call needs with it.
template <typename Args>
struct DecodePlan {
  PlanDecodeArgs plan;      // device lengths, device schedule
  DecodeSchedule schedule;  // describe_schedule(plan)
  DeviceBuffer schedule_buffer;
  DeviceBuffer workspace;
  int64_t workspace_bytes = 0;
};
using DensePlan = DecodePlan<DenseDecodeArgs>;
using SparsePlan = DecodePlan<SparseDecodeArgs>;

// Allocates the schedule (poisoned with 0xCD) for `args` (device pointers)
// planned for `num_sms` SMs (0: the device's count), sets args.schedule,
// allocates workspace_size(args) bytes (poisoned with 0xFF), and checks that
// validate() accepts both calls. Launches nothing.
void prepare_plan(DenseDecodeArgs& args, int32_t num_sms, DensePlan* plan);
void prepare_plan(SparseDecodeArgs& args, int32_t num_sms, SparsePlan* plan);

// After a planned and run call over b requests: the split path really ran.
// The schedule's header (internal layout, common/decode_schedule.h) counts
// more partial slots than requests exactly when some request was cut; with
// `many_partials`, some request has more than kManyPartials (the combine
// took several round trips for its rows).
void expect_split_path_ran(const DensePlan& plan, int64_t b, bool many_partials, const std::string& what);
void expect_split_path_ran(const SparsePlan& plan, int64_t b, bool many_partials, const std::string& what);

// Enqueues plan_decode then the decode call on `stream` (no
// synchronization): exactly what an engine captures in a CUDA graph. Returns
// "" on success, else which call failed and why (no gtest assertion, so a
// caller in the middle of a stream capture can end the capture first).
std::string enqueue_plan_and_decode(const DenseDecodeArgs& args, const DensePlan& plan, cudaStream_t stream);
std::string enqueue_plan_and_decode(const SparseDecodeArgs& args, const SparsePlan& plan, cudaStream_t stream);

// Poisons (0xFF, NaN) the whole out and lse buffers of a mirror, padding
// included, on `stream`.
void poison_outputs(const DeviceMirror<DenseDecodeArgs>& mirror, cudaStream_t stream);
void poison_outputs(const DeviceMirror<SparseDecodeArgs>& mirror, cudaStream_t stream);

// Copies the mirror's out and lse (whole buffers, padding included) to the
// host, checking every copy.
void download_outputs(const DeviceMirror<DenseDecodeArgs>& mirror, HostOutputs* got);
void download_outputs(const DeviceMirror<SparseDecodeArgs>& mirror, HostOutputs* got);

// prepare_plan + poison + enqueue + synchronize + download into *got.
void plan_and_run(DeviceMirror<DenseDecodeArgs>& mirror, int32_t num_sms, HostOutputs* got,
                  DensePlan* plan_out = nullptr);
void plan_and_run(DeviceMirror<SparseDecodeArgs>& mirror, int32_t num_sms, HostOutputs* got,
                  SparsePlan* plan_out = nullptr);

}  // namespace flashmla::test
