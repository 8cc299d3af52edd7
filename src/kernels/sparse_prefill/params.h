// Device parameters of the sparse prefill kernel (built by launch_impl.cuh
// from the validated SparsePrefillArgs; h_kv = 1).
#pragma once

#include <cstdint>

namespace flashmla::kernels::sparse_prefill {

struct Params {
  int32_t s_q;
  int32_t s_kv;
  int32_t h_q;
  int32_t topk;
  int32_t head_groups;  // ceil(h_q / 64): CTAs per query token
  int32_t q_box_rows;   // heads one q load brings (min(h_q, 64)); the rest of the tile is zeroed
  float scale_log2;     // softmax_scale * log2(e): logits in base 2

  const void* kv;  // [s_kv, d_qk] bf16
  int64_t stride_kv_s;
  const int32_t* indices;  // [s_q, topk]
  int64_t stride_indices_s;
  const int32_t* topk_length;  // [s_q] or nullptr
  const float* attn_sink;      // [h_q] or nullptr

  void* out;  // [s_q, h_q, d_v] bf16
  int64_t stride_out_s;
  int64_t stride_out_h;
  float* max_logits;  // [s_q, h_q]
  int64_t stride_max_logits_s;
  float* lse;  // [s_q, h_q]
  int64_t stride_lse_s;
};

}  // namespace flashmla::kernels::sparse_prefill
