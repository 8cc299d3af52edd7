// The body of the sparse prefill launcher for one d_qk; each inst/*.cu
// instantiates it once.
#pragma once

#include <cuda.h>

#include "common/status_util.h"
#include "device/tma_descriptor.h"
#include "flashmla/args.h"
#include "kernels/launch_pdl.h"
#include "kernels/sparse_prefill/kernel.cuh"

namespace flashmla::kernels::sparse_prefill {

// q [s_q, h_q, d_qk] seen as 3-D (d, head, token); one box of (64 dims,
// min(h_q, 64) heads, 1 token) is one k-tile of a CTA's query tile. Heads
// past h_q in the last group of 64 are out of bounds: TMA fills them with
// zeros.
inline Status encode_q_map(const SparsePrefillArgs& a, int32_t box_rows, CUtensorMap* map) {
  device::TensorMapParams m;
  m.dtype = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  m.element_bytes = 2;
  m.rank = 3;
  m.dims[0] = cuuint64_t(a.d_qk);
  m.dims[1] = cuuint64_t(a.h_q);
  m.dims[2] = cuuint64_t(a.s_q);
  m.strides_bytes[0] = cuuint64_t(a.stride_q_h) * 2;
  m.strides_bytes[1] = cuuint64_t(a.stride_q_s) * 2;
  m.box[0] = 64;
  m.box[1] = cuuint32_t(box_rows);
  m.box[2] = 1;
  m.swizzle = CU_TENSOR_MAP_SWIZZLE_128B;
  return device::encode_tensor_map(m, a.q, map);
}

template <int kDimQK>
Status launch_typed(const SparsePrefillArgs& a, cudaStream_t stream) {
  using Cfg = Config<kDimQK>;
  const int32_t box_rows = int32_t(a.h_q < Cfg::kBlockM ? a.h_q : Cfg::kBlockM);
  CUtensorMap q_map;
  Status st = encode_q_map(a, box_rows, &q_map);
  if (!st.ok()) return st;

  Params p;
  p.s_q = int32_t(a.s_q);
  // Indices are int32: an s_kv beyond that range bounds nothing further.
  p.s_kv = int32_t(a.s_kv > 0x7FFFFFFFLL ? 0x7FFFFFFFLL : a.s_kv);
  p.h_q = int32_t(a.h_q);
  p.topk = int32_t(a.topk);
  p.head_groups = int32_t((a.h_q + Cfg::kBlockM - 1) / Cfg::kBlockM);
  p.q_box_rows = box_rows;
  p.scale_log2 = a.softmax_scale * 1.4426950408889634f;
  p.kv = a.kv;
  p.stride_kv_s = a.stride_kv_s;
  p.indices = a.indices;
  p.stride_indices_s = a.stride_indices_s;
  p.topk_length = a.topk_length;
  p.attn_sink = a.attn_sink;
  p.out = a.out;
  p.stride_out_s = a.stride_out_s;
  p.stride_out_h = a.stride_out_h;
  p.max_logits = a.max_logits;
  p.stride_max_logits_s = a.stride_max_logits_s;
  p.lse = a.lse;
  p.stride_lse_s = a.stride_lse_s;

  auto kernel = sparse_prefill_kernel<Cfg>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmemBytes);
  if (err != cudaSuccess) return make_cuda_status("sparse_prefill: cudaFuncSetAttribute", err);

  err = launch_pdl(kernel, dim3(unsigned(a.s_q * p.head_groups), 1, 1), dim3(Cfg::kThreads, 1, 1), Cfg::kSmemBytes,
                   stream, q_map, p);
  if (err != cudaSuccess) return make_cuda_status("sparse_prefill: launch", err);
  return Status{};
}

}  // namespace flashmla::kernels::sparse_prefill
