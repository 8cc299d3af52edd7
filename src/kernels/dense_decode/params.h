// Device parameters of the dense decode kernel (built by launch.cu from the
// validated DenseDecodeArgs).
#pragma once

#include <cstdint>

namespace flashmla::kernels::dense_decode {

struct Params {
  int32_t b;
  int32_t s_q;
  int32_t h_q;
  int32_t group;            // h_q / h_kv
  int32_t heads_per_tile;   // rows of a tile = heads_per_tile * tokens_per_tile
  int32_t tokens_per_tile;
  int32_t head_tiles;
  int32_t num_blocks;
  int32_t max_blocks_per_seq;
  int32_t num_workers;
  int32_t num_slots;  // partial-result slots in the workspace
  bool causal;
  float scale_log2;  // softmax_scale * log2(e): logits in base 2

  const int32_t* block_table;  // [b, max_blocks_per_seq]
  int64_t stride_block_table_b;
  const int32_t* cache_seqlens;  // [b]

  // The schedule: worker ranges and split_begin (common/decode_schedule.h).
  const void* schedule;

  void* out;  // [b, s_q, h_q, d_v]
  int64_t stride_out_b;
  int64_t stride_out_s;
  int64_t stride_out_h;
  float* lse;  // [b, h_q, s_q]
  int64_t stride_lse_b;
  int64_t stride_lse_h;

  // Split path (workspace): normalized partial outputs and their lse.
  float* out_partial;  // [slots, s_q, h_q, d_v]
  float* lse_partial;  // [slots, s_q, h_q]
#if FLASHMLA_TRACE
  uint64_t* trace;  // phase stamps (device/trace.cuh), measurement builds only
#endif
};

}  // namespace flashmla::kernels::dense_decode
