// One dispatch function per operation. A launcher is a branch keyed on what
// selects its compiled variant (dtype, kv_format, head group); every
// function ends in the "not supported" branch for what no variant serves.
#include "api/dispatch.h"

#include "api/check.h"
#include "api/device.h"
#include "kernels/combine/launch.h"
#include "kernels/dense_decode/launch.h"
#include "kernels/plan_decode/launch.h"
#include "kernels/sparse_decode/launch.h"
#include "kernels/sparse_prefill/launch.h"

namespace flashmla::api {
namespace {

Status launched(const char* launcher, cudaError_t err) {
  return err == cudaSuccess ? ok_status() : make_cuda_status(launcher, err);
}

}  // namespace

Status dispatch_plan_decode(const PlanDecodeArgs& args, cudaStream_t stream) {
  return launched("launch_plan_decode", kernels::launch_plan_decode(args, stream));
}

Status dispatch_dense_decode(const DenseDecodeArgs& args, const DecodeWorkspace& workspace,
                             cudaStream_t stream) {
  FLASHMLA_TRY(kernels::dense_decode_supported(args));
  return kernels::launch_dense_decode(args, workspace.out_partial, workspace.lse_partial, stream);
}

Status dispatch_sparse_decode(const SparseDecodeArgs& args, const DecodeWorkspace& workspace,
                              cudaStream_t stream) {
  FLASHMLA_TRY(kernels::sparse_decode_supported(args));
  return kernels::launch_sparse_decode(args, workspace.out_partial, workspace.lse_partial, stream);
}

Status dispatch_sparse_prefill(const SparsePrefillArgs& args, cudaStream_t stream) {
  FLASHMLA_TRY(kernels::sparse_prefill_supported(args));
  return kernels::launch_sparse_prefill(args, stream);
}

Status dispatch_combine(const CombineArgs& args, cudaStream_t stream) {
  return launched("launch_combine", kernels::launch_combine(args, stream));
}

}  // namespace flashmla::api
