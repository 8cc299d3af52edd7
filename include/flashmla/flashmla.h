// FlashMLA-cpp public API: Multi-head Latent Attention kernels for Hopper.
//
// Every operation has the same lifecycle (CUTLASS / CUB style):
//   validate(args)                 -> Status: is this input set valid and supported, and if not, why
//   workspace_size(args)           -> bytes of scratch device memory run() needs (may be 0)
//   run(args, workspace, bytes, s) -> Status: validates, then launches on stream s
//
// run() never allocates, never synchronizes the host, never launches on bad
// input, and runs on the device that owns args.q (not the current device),
// so it is safe inside CUDA graphs. Outputs, lse, the schedule and workspace
// all belong to the caller. Nothing here throws.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "flashmla/args.h"
#include "flashmla/status.h"
#include "flashmla/types.h"

namespace flashmla {

// ----- device information ---------------------------------------------------

struct DeviceInfo {
  int32_t device = -1;
  int32_t sm_count = 0;
  int32_t cc_major = 0;
  int32_t cc_minor = 0;
  int64_t smem_per_block_optin = 0;
  int64_t l2_bytes = 0;
  int64_t global_memory_bytes = 0;
  char name[256] = {};
};

// Fills *info for CUDA device `device`.
Status get_device_info(int32_t device, DeviceInfo* info);

// kOk when the device can run this library's kernels (compute capability
// 9.0, i.e. H100/H200, and the kernels were compiled for sm_90a); otherwise
// kNotSupported naming the device's capability.
Status check_device_supported(int32_t device);

// ----- plan_decode ------------------------------------------------------------

Status validate(const PlanDecodeArgs& args);
// Bytes of the schedule buffer (args.schedule). Depends only on the shapes
// and num_sms, so an engine can size it once for its largest batch.
int64_t workspace_size(const PlanDecodeArgs& args);
// The host-side description of the schedule that run(args) writes; pass it
// to every decode call that uses the schedule.
DecodeSchedule describe_schedule(const PlanDecodeArgs& args);
Status run(const PlanDecodeArgs& args, void* workspace, int64_t workspace_bytes,
           cudaStream_t stream);

// ----- dense_decode -------------------------------------------------------------

Status validate(const DenseDecodeArgs& args);
int64_t workspace_size(const DenseDecodeArgs& args);
Status run(const DenseDecodeArgs& args, void* workspace, int64_t workspace_bytes,
           cudaStream_t stream);

// ----- sparse_decode ------------------------------------------------------------

Status validate(const SparseDecodeArgs& args);
int64_t workspace_size(const SparseDecodeArgs& args);
Status run(const SparseDecodeArgs& args, void* workspace, int64_t workspace_bytes,
           cudaStream_t stream);

// ----- sparse_prefill -----------------------------------------------------------

Status validate(const SparsePrefillArgs& args);
int64_t workspace_size(const SparsePrefillArgs& args);
Status run(const SparsePrefillArgs& args, void* workspace, int64_t workspace_bytes,
           cudaStream_t stream);

// ----- combine --------------------------------------------------------------------

Status validate(const CombineArgs& args);
int64_t workspace_size(const CombineArgs& args);
Status run(const CombineArgs& args, void* workspace, int64_t workspace_bytes,
           cudaStream_t stream);

}  // namespace flashmla
