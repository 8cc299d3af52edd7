// Dispatch: from a validated call, on the device that owns its tensors, to
// the compiled kernel variant that serves it. Each launcher
// (src/kernels/<op>/launch.cu) is called from here; a call that no compiled
// variant serves ends in "not supported", never in silence.
#pragma once

#include <cuda_runtime_api.h>

#include "flashmla/args.h"
#include "flashmla/status.h"

namespace flashmla::api {

// The decode split path's scratch, carved from the caller's workspace
// (layout: decode_workspace_layout).
struct DecodeWorkspace {
  float* out_partial = nullptr;  // [num_slots, s_q, h_q, d_v]
  float* lse_partial = nullptr;  // [num_slots, s_q, h_q]
  int64_t num_slots = 0;
};

Status dispatch_plan_decode(const PlanDecodeArgs& args, cudaStream_t stream);
Status dispatch_dense_decode(const DenseDecodeArgs& args, const DecodeWorkspace& workspace,
                             cudaStream_t stream);
Status dispatch_sparse_decode(const SparseDecodeArgs& args, const DecodeWorkspace& workspace,
                              cudaStream_t stream);
Status dispatch_sparse_prefill(const SparsePrefillArgs& args, cudaStream_t stream);
Status dispatch_combine(const CombineArgs& args, cudaStream_t stream);

}  // namespace flashmla::api
