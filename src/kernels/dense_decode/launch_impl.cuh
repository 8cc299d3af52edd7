// The body of the dense decode launcher for one element type; each
// inst/*.cu instantiates it once.
#pragma once

#include <cuda.h>

#include "common/decode_schedule.h"
#include "common/dense_decode_tiles.h"
#include "common/status_util.h"
#include "device/tma_descriptor.h"
#include "flashmla/args.h"
#include "kernels/combine/launch.h"
#include "kernels/trace.h"
#include "kernels/dense_decode/kernel.cuh"
#include "kernels/launch_pdl.h"

namespace flashmla::kernels::dense_decode {

template <typename Element>
constexpr CUtensorMapDataType tensor_map_dtype() {
  return std::is_same_v<Element, cutlass::half_t> ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
}

// q [b, s_q, h_q, d_qk] seen as 5-D (d, head in group, KV head, token,
// request), so one box of (64 dims, heads_per_tile, 1, tokens_per_tile, 1)
// is one k-tile of a 64-row query tile. Heads past the group and tokens past
// s_q are out of bounds: TMA fills them with zeros.
template <typename Element>
Status encode_q_map(const DenseDecodeArgs& a, const DenseDecodeTiles& tiles, CUtensorMap* map) {
  device::TensorMapParams m;
  m.dtype = tensor_map_dtype<Element>();
  m.element_bytes = 2;
  m.rank = 5;
  m.dims[0] = cuuint64_t(a.d_qk);
  m.dims[1] = cuuint64_t(tiles.group);
  m.dims[2] = cuuint64_t(a.h_kv);
  m.dims[3] = cuuint64_t(a.s_q);
  m.dims[4] = cuuint64_t(a.b);
  m.strides_bytes[0] = cuuint64_t(a.stride_q_h) * 2;
  m.strides_bytes[1] = cuuint64_t(a.stride_q_h) * tiles.group * 2;
  m.strides_bytes[2] = cuuint64_t(a.stride_q_s) * 2;
  m.strides_bytes[3] = cuuint64_t(a.stride_q_b) * 2;
  m.box[0] = 64;
  m.box[1] = cuuint32_t(tiles.heads_per_tile);
  m.box[2] = 1;
  m.box[3] = cuuint32_t(tiles.tokens_per_tile);
  m.box[4] = 1;
  m.swizzle = CU_TENSOR_MAP_SWIZZLE_128B;
  return device::encode_tensor_map(m, a.q, map);
}

// kv [num_blocks, page_block_size, h_kv, d_qk] seen as 4-D (d, KV head, row,
// page); one box of (64 dims, 1, 64 rows, 1) is one k-tile of a KV block.
template <typename Element>
Status encode_kv_map(const DenseDecodeArgs& a, CUtensorMap* map) {
  device::TensorMapParams m;
  m.dtype = tensor_map_dtype<Element>();
  m.element_bytes = 2;
  m.rank = 4;
  m.dims[0] = cuuint64_t(a.d_qk);
  m.dims[1] = cuuint64_t(a.h_kv);
  m.dims[2] = cuuint64_t(a.page_block_size);
  // With no page at all nothing is ever loaded; the map still needs a shape.
  m.dims[3] = cuuint64_t(a.num_blocks > 0 ? a.num_blocks : 1);
  m.strides_bytes[0] = cuuint64_t(a.stride_kv_h) * 2;
  m.strides_bytes[1] = cuuint64_t(a.stride_kv_row) * 2;
  m.strides_bytes[2] = cuuint64_t(a.stride_kv_block) * 2;
  m.box[0] = 64;
  m.box[1] = 1;
  m.box[2] = cuuint32_t(a.page_block_size);
  m.box[3] = 1;
  m.swizzle = CU_TENSOR_MAP_SWIZZLE_128B;
  m.l2_promotion = CU_TENSOR_MAP_L2_PROMOTION_L2_256B;
  return device::encode_tensor_map(m, a.num_blocks > 0 ? a.kv : a.q, map);
}

template <typename Element, int kDimQK>
Status launch_typed(const DenseDecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream) {
  using Cfg = Config<Element, kDimQK>;
  const DenseDecodeTiles tiles = dense_decode_tiles(a.s_q, a.h_q, a.h_kv);
  CUtensorMap q_map, kv_map;
  Status st = encode_q_map<Element>(a, tiles, &q_map);
  if (!st.ok()) return st;
  st = encode_kv_map<Element>(a, &kv_map);
  if (!st.ok()) return st;

  Params p;
  p.b = int32_t(a.b);
  p.s_q = int32_t(a.s_q);
  p.h_q = int32_t(a.h_q);
  p.group = tiles.group;
  p.heads_per_tile = tiles.heads_per_tile;
  p.tokens_per_tile = tiles.tokens_per_tile;
  p.head_tiles = tiles.head_tiles;
  p.num_blocks = int32_t(a.num_blocks);
  p.max_blocks_per_seq = int32_t(a.max_blocks_per_seq);
  p.num_workers = a.schedule.num_workers;
  p.num_slots = int32_t(max_partials(a.b, a.schedule.num_workers));
  p.causal = a.causal && a.s_q > 1;
  p.scale_log2 = a.softmax_scale * 1.4426950408889634f;
  p.block_table = a.block_table;
  p.stride_block_table_b = a.stride_block_table_b;
  p.cache_seqlens = a.cache_seqlens;
  p.schedule = a.schedule.data;
  p.out = a.out;
  p.stride_out_b = a.stride_out_b;
  p.stride_out_s = a.stride_out_s;
  p.stride_out_h = a.stride_out_h;
  p.lse = a.lse;
  p.stride_lse_b = a.stride_lse_b;
  p.stride_lse_h = a.stride_lse_h;
  p.out_partial = out_partial;
  p.lse_partial = lse_partial;
#if FLASHMLA_TRACE
  p.trace = trace_stamps(TraceKernel::kDenseDecode);
#endif

  // Row tiles 2i and 2i + 1 of a worker read the same KV blocks (the other
  // heads of the group, or the next query token): as a 2-CTA cluster they
  // load each block once from L2 and multicast it into both.
  const bool multicast = tiles.m_blocks % 2 == 0;
  auto kernel = multicast ? dense_decode_kernel<Cfg, true> : dense_decode_kernel<Cfg, false>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmemBytes);
  if (err != cudaSuccess) return make_cuda_status("dense_decode: cudaFuncSetAttribute", err);

  err = launch_pdl_cluster(kernel, dim3(unsigned(p.num_workers), unsigned(tiles.m_blocks), unsigned(a.h_kv)),
                           dim3(1, multicast ? 2 : 1, 1), dim3(Cfg::kThreads, 1, 1), Cfg::kSmemBytes, stream, q_map,
                           kv_map, p);
  if (err != cudaSuccess) return make_cuda_status("dense_decode: launch", err);

  err = launch_scheduled_combine(scheduled_combine_args(a, out_partial, lse_partial, nullptr, a.dtype), stream);
  if (err != cudaSuccess) return make_cuda_status("dense_decode: combine launch", err);
  return Status{};
}

}  // namespace flashmla::kernels::dense_decode
