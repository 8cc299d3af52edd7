// combine launcher: merges partial attention results over disjoint key sets.
#pragma once

#include <cuda_runtime_api.h>

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

}  // namespace flashmla::kernels
