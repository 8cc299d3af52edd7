// run() of every operation: validate (never launch on bad input), check the
// workspace, return early for an empty batch, move to the device that owns
// the tensors (restoring the caller's device afterwards), check that device,
// dispatch. No allocation and no host synchronization on this path, so it
// can be captured in a CUDA graph.
#include "api/check.h"
#include "api/decode_common.h"
#include "api/device.h"
#include "api/dispatch.h"
#include "flashmla/flashmla.h"

namespace flashmla {
namespace {

using namespace api;

Status check_workspace(const void* workspace, int64_t workspace_bytes, int64_t needed) {
  if (workspace_bytes < needed) {
    return invalid_argument("workspace_bytes: expected >= %lld (workspace_size(args)), got %lld",
                            (long long)needed, (long long)workspace_bytes);
  }
  if (needed == 0) return ok_status();
  if (workspace == nullptr) {
    return invalid_argument("workspace: expected a non-null pointer of %lld bytes, got nullptr",
                            (long long)needed);
  }
  if (reinterpret_cast<uintptr_t>(workspace) % kTmaAlignment != 0) {
    return invalid_argument("workspace: expected a 16-byte aligned pointer, got %#llx",
                            (unsigned long long)reinterpret_cast<uintptr_t>(workspace));
  }
  return ok_status();
}

// Finds the device of `owner` (args.q or its stand-in), checks that the
// other tensors live there and that it is supported, and makes it current.
Status enter_device_of(DeviceGuard& guard, NamedPointer owner,
                       std::initializer_list<NamedPointer> others) {
  int32_t device = -1;
  FLASHMLA_TRY(device_of_pointer(owner.name, owner.data, &device));
  FLASHMLA_TRY(check_on_device(others, device, owner.name));
  FLASHMLA_TRY(check_device_supported(device));
  return guard.enter(device);
}

DecodeWorkspace carve_decode_workspace(void* workspace, int64_t b, int64_t s_q, int64_t h_q,
                                       int64_t d_v, int32_t num_workers) {
  DecodeWorkspaceLayout layout;
  decode_workspace_layout(b, s_q, h_q, d_v, num_workers, &layout);  // validated: cannot fail
  DecodeWorkspace carved;
  if (layout.bytes == 0) return carved;
  auto* bytes = static_cast<unsigned char*>(workspace);
  carved.out_partial = reinterpret_cast<float*>(bytes);
  carved.lse_partial = reinterpret_cast<float*>(bytes + layout.lse_partial_offset);
  carved.num_slots = layout.num_slots;
  return carved;
}

// Tensors whose extent is 0 are never addressed, so their pointers are not
// required to be device memory.
const void* if_nonempty(const void* data, int64_t extent) { return extent > 0 ? data : nullptr; }

}  // namespace

Status run(const PlanDecodeArgs& args, void*, int64_t, cudaStream_t stream) {
  // The plan's only buffer is args.schedule (workspace_size(args) bytes);
  // it needs no other scratch, so the workspace arguments are not read.
  FLASHMLA_TRY(validate(args));
  if (args.b == 0) return ok_status();
  DeviceGuard guard;
  FLASHMLA_TRY(enter_device_of(guard, {"schedule", args.schedule},
                               {{"lengths", args.lengths}, {"extra_lengths", args.extra_lengths}}));
  return dispatch_plan_decode(args, stream);
}

Status run(const DenseDecodeArgs& args, void* workspace, int64_t workspace_bytes,
           cudaStream_t stream) {
  FLASHMLA_TRY(validate(args));
  FLASHMLA_TRY(check_workspace(workspace, workspace_bytes, workspace_size(args)));
  if (args.b == 0) return ok_status();
  DeviceGuard guard;
  FLASHMLA_TRY(enter_device_of(
      guard, {"q", args.q},
      {{"kv", if_nonempty(args.kv, args.num_blocks)},
       {"block_table", if_nonempty(args.block_table, args.max_blocks_per_seq)},
       {"cache_seqlens", args.cache_seqlens},
       {"schedule.data", args.schedule.data},
       {"out", args.out},
       {"lse", args.lse},
       {"workspace", workspace_size(args) > 0 ? workspace : nullptr}}));
  return dispatch_dense_decode(args,
                               carve_decode_workspace(workspace, args.b, args.s_q, args.h_q,
                                                      args.d_v, args.schedule.num_workers),
                               stream);
}

Status run(const SparseDecodeArgs& args, void* workspace, int64_t workspace_bytes,
           cudaStream_t stream) {
  FLASHMLA_TRY(validate(args));
  FLASHMLA_TRY(check_workspace(workspace, workspace_bytes, workspace_size(args)));
  if (args.b == 0) return ok_status();
  DeviceGuard guard;
  FLASHMLA_TRY(enter_device_of(
      guard, {"q", args.q},
      {{"kv", if_nonempty(args.kv, args.num_blocks)},
       {"indices", args.indices},
       {"topk_length", args.topk_length},
       {"attn_sink", args.attn_sink},
       {"extra_kv", if_nonempty(args.extra_kv, args.extra_num_blocks)},
       {"extra_indices", args.extra_indices},
       {"extra_topk_length", args.extra_topk_length},
       {"schedule.data", args.schedule.data},
       {"out", args.out},
       {"lse", args.lse},
       {"workspace", workspace_size(args) > 0 ? workspace : nullptr}}));
  return dispatch_sparse_decode(args,
                                carve_decode_workspace(workspace, args.b, args.s_q, args.h_q,
                                                       args.d_v, args.schedule.num_workers),
                                stream);
}

Status run(const SparsePrefillArgs& args, void* workspace, int64_t workspace_bytes,
           cudaStream_t stream) {
  FLASHMLA_TRY(validate(args));
  FLASHMLA_TRY(check_workspace(workspace, workspace_bytes, workspace_size(args)));
  if (args.s_q == 0) return ok_status();
  DeviceGuard guard;
  FLASHMLA_TRY(enter_device_of(guard, {"q", args.q},
                               {{"kv", if_nonempty(args.kv, args.s_kv)},
                                {"indices", args.indices},
                                {"attn_sink", args.attn_sink},
                                {"topk_length", args.topk_length},
                                {"out", args.out},
                                {"max_logits", args.max_logits},
                                {"lse", args.lse}}));
  return dispatch_sparse_prefill(args, stream);
}

Status run(const CombineArgs& args, void* workspace, int64_t workspace_bytes,
           cudaStream_t stream) {
  FLASHMLA_TRY(validate(args));
  FLASHMLA_TRY(check_workspace(workspace, workspace_bytes, workspace_size(args)));
  if (args.b == 0) return ok_status();
  DeviceGuard guard;
  FLASHMLA_TRY(enter_device_of(guard, {"out_partial", args.out_partial},
                               {{"lse_partial", args.lse_partial},
                                {"attn_sink", args.attn_sink},
                                {"out", args.out},
                                {"lse", args.lse}}));
  return dispatch_combine(args, stream);
}

}  // namespace flashmla
