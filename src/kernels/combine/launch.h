// combine launcher: merges partial attention results over disjoint key sets.
#pragma once

#include <cuda_runtime_api.h>

#include "common/decode_schedule.h"
#include "flashmla/args.h"

namespace flashmla::kernels {

// Launches on `stream` with programmatic dependent launch allowed, so it may
// start while the kernel that writes the partials drains; args are validated.
cudaError_t launch_combine(const CombineArgs& args, cudaStream_t stream);

// The split-KV combine after a decode kernel: merges the workspace partials
// of every request the schedule split (slots [split_begin[i],
// split_begin[i + 1])) into out and lse; other requests are left alone.
struct ScheduledCombineArgs {
  int64_t b, s_q, h_q, d_v;
  int64_t num_slots;           // slots in the workspace
  const int32_t* split_begin;  // device, [b + 1]
  const float* out_partial;    // [slots, s_q, h_q, d_v]
  const float* lse_partial;    // [slots, s_q, h_q]
  const float* attn_sink;      // [h_q] or nullptr
  DType dtype;                 // of out
  void* out;
  int64_t stride_out_b, stride_out_s, stride_out_h;
  float* lse;
  int64_t stride_lse_b, stride_lse_h;
};
cudaError_t launch_scheduled_combine(const ScheduledCombineArgs& args, cudaStream_t stream);

// The scheduled combine of a decode call (DenseDecodeArgs or
// SparseDecodeArgs: their schedule, shape and output fields are named
// alike); the split requests get `attn_sink` here and are written as `dtype`.
template <typename DecodeArgs>
ScheduledCombineArgs scheduled_combine_args(const DecodeArgs& a, const float* out_partial, const float* lse_partial,
                                            const float* attn_sink, DType dtype) {
  ScheduledCombineArgs c;
  c.b = a.b;
  c.s_q = a.s_q;
  c.h_q = a.h_q;
  c.d_v = a.d_v;
  c.num_slots = max_partials(a.b, a.schedule.num_workers);
  c.split_begin = schedule_view(const_cast<void*>(a.schedule.data), a.schedule.num_workers).split_begin;
  c.out_partial = out_partial;
  c.lse_partial = lse_partial;
  c.attn_sink = attn_sink;
  c.dtype = dtype;
  c.out = a.out;
  c.stride_out_b = a.stride_out_b;
  c.stride_out_s = a.stride_out_s;
  c.stride_out_h = a.stride_out_h;
  c.lse = a.lse;
  c.stride_lse_b = a.stride_lse_b;
  c.stride_lse_h = a.stride_lse_h;
  return c;
}

}  // namespace flashmla::kernels
