// Device parameters of the sparse decode kernel (built by launch_impl.cuh
// from the validated SparseDecodeArgs).
#pragma once

#include <cstdint>

namespace flashmla::kernels::sparse_decode {

// One paged FP8 cache and the index rows of the batch into it. Dense decode
// over a V32 cache runs these kernels too: its positions are then a
// request's tokens in order, found through the block table (indices is
// nullptr), and its lengths are cache_seqlens with topk the block table's
// reach (max_blocks_per_seq * 64), so a length is clamped as dense decode
// clamps it.
struct CacheParams {
  const uint8_t* kv;          // [num_blocks, page_block_size, 1, token bytes]
  int64_t stride_kv_block;    // bytes
  int32_t page_block_size;
  int64_t capacity;           // num_blocks * page_block_size: valid indices are [0, capacity)
  const int32_t* indices;     // [b, s_q, topk]
  int64_t stride_indices_b;
  int64_t stride_indices_s;
  int32_t topk;               // 0: no such cache
  const int32_t* lengths;     // [b] or nullptr (all topk positions used)
  const int32_t* block_table;  // dense: [b, max_blocks_per_seq] (page_block_size 64); sparse: nullptr
  int64_t stride_block_table_b;
  int32_t num_pages;           // dense: num_blocks; a page id outside [0, num_pages) is masked
};

struct Params {
  int32_t b;
  int32_t s_q;
  int32_t h_q;
  // A CTA's 64-row tile: heads_per_tile heads of tokens_per_tile query
  // tokens (row = token_in_tile * heads_per_tile + head_in_tile), as
  // dense_decode_tiles cuts them; grid y = token tile * head_tiles + head
  // tile. Sparse decode: 64 heads of one token (each token has its own
  // indices); dense decode over a V32 cache packs the tokens of small head
  // counts into one tile, so a block is gathered once for all of them.
  int32_t head_tiles;       // ceil(h_q / heads_per_tile)
  int32_t heads_per_tile;   // 64, or h_q < 64 with tokens packed
  int32_t tokens_per_tile;  // 1, or up to 64 / h_q (dense, h_q < 64)
  int32_t num_workers;
  int32_t num_slots;  // partial-result slots in the workspace
  float scale_log2;   // softmax_scale * log2(e): logits in base 2
  bool causal;        // dense, s_q > 1: query token s sees len - (s_q - 1 - s) positions

  CacheParams main;
  CacheParams extra;

  const float* attn_sink;  // [h_q] or nullptr

  // The schedule: worker ranges and split_begin (common/decode_schedule.h).
  const void* schedule;

  void* out;  // [b, s_q, h_q, d_v] bf16
  int64_t stride_out_b;
  int64_t stride_out_s;
  int64_t stride_out_h;
  float* lse;  // [b, h_q, s_q]
  int64_t stride_lse_b;
  int64_t stride_lse_h;

  float* out_partial;  // [slots, s_q, h_q, d_v]
  float* lse_partial;  // [slots, s_q, h_q]
};

}  // namespace flashmla::kernels::sparse_decode
