// The body of the sparse decode launcher for one cache format; each
// inst/*.cu instantiates it once.
#pragma once

#include <type_traits>

#include <cuda.h>

#include "common/decode_schedule.h"
#include "common/status_util.h"
#include "device/tma_descriptor.h"
#include "flashmla/args.h"
#include "kernels/combine/launch.h"
#include "kernels/launch_pdl.h"
#include "kernels/sparse_decode/kernel.cuh"
#include "kernels/sparse_decode/small_kernel.cuh"

namespace flashmla::kernels::sparse_decode {

// q [b, s_q, h_q, d_qk] seen as 4-D (d, head, token, request): one box of
// (64 dims, min(h_q, 64) heads, tokens_per_tile, 1) is one k-tile of a CTA's
// 64-row tile. DecodeArgs: SparseDecodeArgs, or DenseDecodeArgs over a V32
// cache (bf16 q, the same field names).
template <typename DecodeArgs>
Status encode_q_map(const DecodeArgs& a, int32_t tokens_per_tile, CUtensorMap* map) {
  device::TensorMapParams m;
  m.dtype = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  m.element_bytes = 2;
  m.rank = 4;
  m.dims[0] = cuuint64_t(a.d_qk);
  m.dims[1] = cuuint64_t(a.h_q);
  m.dims[2] = cuuint64_t(a.s_q);
  m.dims[3] = cuuint64_t(a.b);
  m.strides_bytes[0] = cuuint64_t(a.stride_q_h) * 2;
  m.strides_bytes[1] = cuuint64_t(a.stride_q_s) * 2;
  m.strides_bytes[2] = cuuint64_t(a.stride_q_b) * 2;
  m.box[0] = 64;
  m.box[1] = cuuint32_t(a.h_q < 64 ? a.h_q : 64);
  m.box[2] = cuuint32_t(tokens_per_tile);
  m.box[3] = 1;
  m.swizzle = CU_TENSOR_MAP_SWIZZLE_128B;
  return device::encode_tensor_map(m, a.q, map);
}

inline CacheParams cache_params(const void* kv, int64_t stride_kv_block, int64_t page_block_size, int64_t num_blocks,
                                const int32_t* indices, int64_t stride_b, int64_t stride_s, int64_t topk,
                                const int32_t* lengths) {
  CacheParams c;
  c.kv = static_cast<const uint8_t*>(kv);
  c.stride_kv_block = stride_kv_block;
  c.page_block_size = int32_t(page_block_size > 0 ? page_block_size : 1);
  // No page at all (or no cache): every index is invalid.
  c.capacity = kv != nullptr && num_blocks > 0 ? num_blocks * page_block_size : 0;
  c.indices = indices;
  c.stride_indices_b = stride_b;
  c.stride_indices_s = stride_s;
  c.topk = int32_t(topk);
  c.lengths = lengths;
  c.block_table = nullptr;
  c.stride_block_table_b = 0;
  c.num_pages = 0;
  return c;
}

// The fields both argument types fill alike: shapes, the schedule, outputs.
template <typename DecodeArgs>
Params common_params(const DecodeArgs& a, int32_t head_tiles, float* out_partial, float* lse_partial) {
  Params p;
  p.b = int32_t(a.b);
  p.s_q = int32_t(a.s_q);
  p.h_q = int32_t(a.h_q);
  p.head_tiles = head_tiles;
  p.heads_per_tile = 64;
  p.tokens_per_tile = 1;
  p.num_workers = a.schedule.num_workers;
  p.num_slots = int32_t(max_partials(a.b, a.schedule.num_workers));
  p.scale_log2 = a.softmax_scale * 1.4426950408889634f;
  p.causal = false;
  p.attn_sink = nullptr;
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
  return p;
}

inline Params make_params(const SparseDecodeArgs& a, int32_t head_tiles, float* out_partial, float* lse_partial) {
  Params p = common_params(a, head_tiles, out_partial, lse_partial);
  p.main = cache_params(a.kv, a.stride_kv_block, a.page_block_size, a.num_blocks, a.indices, a.stride_indices_b,
                        a.stride_indices_s, a.topk, a.topk_length);
  const bool has_extra = a.extra_kv != nullptr && a.extra_topk > 0;
  p.extra = has_extra ? cache_params(a.extra_kv, a.stride_extra_kv_block, a.extra_page_block_size, a.extra_num_blocks,
                                     a.extra_indices, a.stride_extra_indices_b, a.stride_extra_indices_s,
                                     a.extra_topk, a.extra_topk_length)
                      : cache_params(nullptr, 0, 1, 0, nullptr, 0, 0, 0, nullptr);
  p.attn_sink = a.attn_sink;
  return p;
}

// Dense decode over a V32 cache (validated: page_block_size 64, h_kv 1):
// the positions of request i are its first cache_seqlens[i] tokens, clamped
// to what its block-table row reaches, as the bf16 kernel clamps them.
//
// Its tiles are dense decode's (dense_decode_tiles, h_kv 1): 64 heads of one
// token from 64 heads up, else every head of up to 64 / h_q tokens, so the
// dense schedule's worker count (num_sms / tiles) is this grid's; the head
// tile count the launcher passes for sparse arguments is not used.
inline Params make_params(const DenseDecodeArgs& a, int32_t, float* out_partial, float* lse_partial) {
  const DenseDecodeTiles tiles = dense_decode_tiles(a.s_q, a.h_q, 1);
  Params p = common_params(a, tiles.head_tiles, out_partial, lse_partial);
  p.heads_per_tile = tiles.heads_per_tile;
  p.tokens_per_tile = tiles.tokens_per_tile;
  p.causal = a.causal;
  p.main = cache_params(a.kv, a.stride_kv_block, a.page_block_size, a.num_blocks, nullptr, 0, 0,
                        a.max_blocks_per_seq * a.page_block_size, a.cache_seqlens);
  p.main.block_table = a.block_table;
  p.main.stride_block_table_b = a.stride_block_table_b;
  p.main.num_pages = int32_t(a.num_blocks);
  p.extra = cache_params(nullptr, 0, 1, 0, nullptr, 0, 0, 0, nullptr);
  return p;
}

// The decode kernel (PDL-launched), then the scheduled combine of the split
// requests, which also applies their sink.
template <typename Kernel, typename DecodeArgs>
Status launch_chain(Kernel kernel, int smem_bytes, int threads, dim3 grid, unsigned cluster_y, const CUtensorMap& q_map,
                    const Params& p, const DecodeArgs& a, float* out_partial, float* lse_partial,
                    cudaStream_t stream) {
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (err != cudaSuccess) return make_cuda_status("sparse_decode: cudaFuncSetAttribute", err);

  err = launch_pdl_cluster(kernel, grid, dim3(1, unsigned(cluster_y), 1), dim3(unsigned(threads), 1, 1), size_t(smem_bytes),
                   stream, q_map, p);
  if (err != cudaSuccess) return make_cuda_status("sparse_decode: launch", err);

  // Split requests get their sink in the combine.
  err = launch_scheduled_combine(
      scheduled_combine_args(a, out_partial, lse_partial, p.attn_sink, DType::kBFloat16), stream);
  if (err != cudaSuccess) return make_cuda_status("sparse_decode: combine launch", err);
  return Status{};
}

// Dense decode arguments run the kernels that read positions through the
// block table.
template <typename DecodeArgs, typename Base>
using ConfigFor = std::conditional_t<std::is_same_v<DecodeArgs, DenseDecodeArgs>, PagedPositions<Base>, Base>;

// The 64-head kernel (and the crossover): grid (worker, token tile x head tile).
template <KVFormat kFormat, typename DecodeArgs>
Status launch_typed(const DecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream) {
  using Cfg = ConfigFor<DecodeArgs, Config<kFormat>>;
  const Params p = make_params(a, int32_t((a.h_q + Cfg::kBlockM - 1) / Cfg::kBlockM), out_partial, lse_partial);
  CUtensorMap q_map;
  Status st = encode_q_map(a, p.tokens_per_tile, &q_map);
  if (!st.ok()) return st;
  const int64_t token_tiles = (a.s_q + p.tokens_per_tile - 1) / p.tokens_per_tile;
  const dim3 grid(unsigned(p.num_workers), unsigned(token_tiles * p.head_tiles), 1);
  // h_q > 64: the two head tiles of a query token (adjacent in grid y) are
  // one cluster and share the gather (the crossover, kernel.cuh).
  if (p.head_tiles == 2) {
    return launch_chain(sparse_decode_kernel<Cfg, true>, Cfg::kSmemBytes, Cfg::kThreads, grid, 2, q_map, p, a,
                        out_partial, lse_partial, stream);
  }
  return launch_chain(sparse_decode_kernel<Cfg, false>, Cfg::kSmemBytes, Cfg::kThreads, grid, 1, q_map, p, a,
                      out_partial, lse_partial, stream);
}

// The small-head kernel (h_q <= kN): grid (worker, query token); dense
// decode takes it only with s_q = 1 (launch_format), a tile of one token.
template <KVFormat kFormat, int kN, typename DecodeArgs>
Status launch_small(const DecodeArgs& a, float* out_partial, float* lse_partial, cudaStream_t stream) {
  using Cfg = ConfigFor<DecodeArgs, SmallConfig<kFormat, kN>>;
  const Params p = make_params(a, 1, out_partial, lse_partial);
  CUtensorMap q_map;
  Status st = encode_q_map(a, 1, &q_map);
  if (!st.ok()) return st;
  return launch_chain(sparse_decode_small_kernel<Cfg>, Cfg::kSmemBytes, Cfg::kThreads,
                      dim3(unsigned(p.num_workers), unsigned(a.s_q), 1), 1, q_map, p, a, out_partial, lse_partial,
                      stream);
}

}  // namespace flashmla::kernels::sparse_decode
