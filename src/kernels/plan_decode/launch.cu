#include "kernels/plan_decode/launch.h"

#include "common/decode_schedule.h"
#include "kernels/plan_decode/kernel.cuh"

namespace flashmla::kernels {

cudaError_t launch_plan_decode(const PlanDecodeArgs& args, cudaStream_t stream) {
  PlanDecodeParams params;
  params.b = int32_t(args.b);
  params.num_workers = decode_num_workers(args.num_sms, args.kind, args.s_q, args.h_q, args.h_kv);
  params.sparse = args.kind == DecodeKind::kSparse;
  params.lengths = args.lengths;
  params.topk = int32_t(args.topk);
  params.extra_lengths = args.extra_lengths;
  params.extra_topk = int32_t(args.extra_topk);
  params.schedule = args.schedule;

  const size_t smem = size_t(args.b > 0 ? args.b : 1) * sizeof(int32_t);
  if (smem > 48 * 1024) {
    cudaError_t err = cudaFuncSetAttribute(plan_decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           int(smem));
    if (err != cudaSuccess) return err;
  }
  plan_decode_kernel<<<1, 256, smem, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace flashmla::kernels
