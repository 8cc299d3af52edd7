#include "kernels/combine/launch.h"

#include "kernels/combine/kernel.cuh"
#include "kernels/launch_pdl.h"
#include "kernels/trace.h"

namespace flashmla::kernels {
namespace {

// One warp per (row, head), or per quarter of it when the batch has few rows
// (kCombineFewRows), kCombineWarps warps per CTA, launched with PDL: it may
// be scheduled while the producer of its partials drains.
bool combine_in_chunks(int64_t rows, int64_t h_q) { return rows * h_q <= kCombineFewRows; }

template <typename KernelParams>
cudaError_t launch_rows(void (*kernel)(KernelParams), const KernelParams& params, int64_t rows, int64_t h_q,
                        int chunks, cudaStream_t stream) {
  const int64_t groups = (h_q * chunks + kCombineWarps - 1) / kCombineWarps;
  return launch_pdl(kernel, dim3(unsigned(rows), unsigned(groups), 1), dim3(kCombineWarps * 32, 1, 1), 0, stream,
                    params);
}

template <typename PartialT, typename OutT>
cudaError_t launch_typed(const CombineParams& params, int64_t rows, cudaStream_t stream) {
  if (combine_in_chunks(rows, params.h_q)) {
    return launch_rows(combine_kernel<4, PartialT, OutT>, params, rows, params.h_q, 4, stream);
  }
  return launch_rows(combine_kernel<1, PartialT, OutT>, params, rows, params.h_q, 1, stream);
}

template <typename PartialT>
cudaError_t launch_for_out(const CombineParams& params, DType dtype, int64_t rows, cudaStream_t stream) {
  switch (dtype) {
    case DType::kBFloat16: return launch_typed<PartialT, __nv_bfloat16>(params, rows, stream);
    case DType::kFloat16: return launch_typed<PartialT, __half>(params, rows, stream);
    case DType::kFloat32: return launch_typed<PartialT, float>(params, rows, stream);
  }
  return cudaErrorNotSupported;
}

template <typename OutT>
cudaError_t launch_scheduled_typed(const ScheduledCombineParams& params, int64_t rows, cudaStream_t stream) {
  if (combine_in_chunks(rows, params.h_q)) {
    return launch_rows(combine_scheduled_kernel<4, OutT>, params, rows, params.h_q, 4, stream);
  }
  return launch_rows(combine_scheduled_kernel<1, OutT>, params, rows, params.h_q, 1, stream);
}

}  // namespace

cudaError_t launch_combine(const CombineArgs& args, cudaStream_t stream) {
  const int64_t rows = args.b * args.s_q;
  if (rows == 0 || args.h_q == 0) return cudaSuccess;
  CombineParams params;
  params.num_splits = int32_t(args.num_splits);
  params.s_q = int32_t(args.s_q);
  params.h_q = int32_t(args.h_q);
  params.d_v = int32_t(args.d_v);
  params.out_partial = args.out_partial;
  params.stride_out_partial_split = args.stride_out_partial_split;
  params.stride_out_partial_b = args.stride_out_partial_b;
  params.stride_out_partial_s = args.stride_out_partial_s;
  params.stride_out_partial_h = args.stride_out_partial_h;
  params.lse_partial = args.lse_partial;
  params.stride_lse_partial_split = args.stride_lse_partial_split;
  params.stride_lse_partial_b = args.stride_lse_partial_b;
  params.stride_lse_partial_h = args.stride_lse_partial_h;
  params.attn_sink = args.attn_sink;
  params.out = args.out;
  params.stride_out_b = args.stride_out_b;
  params.stride_out_s = args.stride_out_s;
  params.stride_out_h = args.stride_out_h;
  params.lse = args.lse;
  params.stride_lse_b = args.stride_lse_b;
  params.stride_lse_h = args.stride_lse_h;
  switch (args.partial_dtype) {
    case DType::kFloat32: return launch_for_out<float>(params, args.dtype, rows, stream);
    case DType::kBFloat16: return launch_for_out<__nv_bfloat16>(params, args.dtype, rows, stream);
    case DType::kFloat16: return launch_for_out<__half>(params, args.dtype, rows, stream);
  }
  return cudaErrorNotSupported;
}

cudaError_t launch_scheduled_combine(const ScheduledCombineArgs& args, cudaStream_t stream) {
  const int64_t rows = args.b * args.s_q;
  if (rows == 0 || args.h_q == 0) return cudaSuccess;
  ScheduledCombineParams params;
  params.s_q = int32_t(args.s_q);
  params.h_q = int32_t(args.h_q);
  params.d_v = int32_t(args.d_v);
  params.num_slots = int32_t(args.num_slots);
  params.split_begin = args.split_begin;
  params.out_partial = args.out_partial;
  params.lse_partial = args.lse_partial;
  params.attn_sink = args.attn_sink;
  params.out = args.out;
  params.stride_out_b = args.stride_out_b;
  params.stride_out_s = args.stride_out_s;
  params.stride_out_h = args.stride_out_h;
  params.lse = args.lse;
  params.stride_lse_b = args.stride_lse_b;
  params.stride_lse_h = args.stride_lse_h;
#if FLASHMLA_TRACE
  params.trace = trace_stamps(TraceKernel::kScheduledCombine);
#endif
  switch (args.dtype) {
    case DType::kBFloat16: return launch_scheduled_typed<__nv_bfloat16>(params, rows, stream);
    case DType::kFloat16: return launch_scheduled_typed<__half>(params, rows, stream);
    case DType::kFloat32: return launch_scheduled_typed<float>(params, rows, stream);
  }
  return cudaErrorNotSupported;
}

}  // namespace flashmla::kernels
