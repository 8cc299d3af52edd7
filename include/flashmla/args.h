// Arguments of every operation (spec section 1). Plain structs of pointers,
// shapes and int64 strides: no CUDA, torch or CuTe types, so the CPU
// reference, the tests and C++ engines all speak them.
//
// Conventions
// - Shapes use the spec's vocabulary: b, s_q, h_q, h_kv, d_qk, d_v, topk,
//   page_block_size, num_blocks.
// - stride_<tensor>_<dim> is in elements of that tensor's element type (bytes
//   for FP8 KV caches). The last dimension of every tensor is contiguous
//   (stride 1) and has no stride field.
// - For run(), every pointer is device memory on one device; the CPU
//   reference (reference/) takes the same structs with host pointers.
// - Optional inputs are nullptr when absent.
#pragma once

#include <cstdint>

#include "flashmla/types.h"

namespace flashmla {

// Which decode operation a schedule serves.
enum class DecodeKind : int32_t {
  kDense = 0,
  kSparse = 1,
};

// ---------------------------------------------------------------------------
// plan_decode: split the KV work of a batch over the SMs, on the GPU.
//
// The schedule lives in caller memory (workspace_size(PlanDecodeArgs) bytes)
// and serves every layer of a step while the lengths are unchanged. It is
// computed from device-resident lengths with no host synchronization, so
// planning may itself be captured in a CUDA graph.
// ---------------------------------------------------------------------------
struct PlanDecodeArgs {
  DecodeKind kind = DecodeKind::kDense;
  int64_t b = 0;
  int64_t s_q = 0;
  int64_t h_q = 0;
  int64_t h_kv = 1;
  // Dense: cache_seqlens [b]. Sparse: topk_length [b], or nullptr when every
  // request uses all topk indices.
  const int32_t* lengths = nullptr;
  // Sparse only: indices per query token, and the extra cache's (0 if none).
  int64_t topk = 0;
  int64_t extra_topk = 0;
  const int32_t* extra_lengths = nullptr;  // extra_topk_length [b] or nullptr
  // SMs to plan for: the device's multiprocessor count (DeviceInfo::sm_count).
  int32_t num_sms = 0;
  // Where the schedule is written: device memory of workspace_size(*this)
  // bytes, 16-byte aligned.
  void* schedule = nullptr;
};

// What a schedule was planned for and where it is. Built on the host by
// describe_schedule(PlanDecodeArgs) and handed to every decode call, which
// checks it against its own arguments (a stale or foreign schedule is an
// invalid argument, not silent garbage).
struct DecodeSchedule {
  const void* data = nullptr;
  int64_t bytes = 0;
  DecodeKind kind = DecodeKind::kDense;
  int64_t b = 0;
  int64_t s_q = 0;
  int64_t h_q = 0;
  int64_t h_kv = 1;
  int64_t topk = 0;
  int64_t extra_topk = 0;
  // Number of workers (persistent CTAs) the KV work is split over.
  int32_t num_workers = 0;
};

// ---------------------------------------------------------------------------
// dense_decode: paged KV, every query attends to its request's first
// cache_seqlens[i] tokens (causal bottom-right when s_q > 1 and causal).
// ---------------------------------------------------------------------------
struct DenseDecodeArgs {
  int64_t b = 0;
  int64_t s_q = 0;
  int64_t h_q = 0;
  int64_t h_kv = 1;
  int64_t d_qk = 576;
  int64_t d_v = 512;
  int64_t page_block_size = 64;
  int64_t num_blocks = 0;
  int64_t max_blocks_per_seq = 0;

  DType dtype = DType::kBFloat16;         // of q and out (bf16 or fp16)
  KVFormat kv_format = KVFormat::kNative; // kNative: same dtype as q

  const void* q = nullptr;  // [b, s_q, h_q, d_qk]
  int64_t stride_q_b = 0;
  int64_t stride_q_s = 0;
  int64_t stride_q_h = 0;

  // kNative: [num_blocks, page_block_size, h_kv, d_qk] elements of dtype.
  // kFp8V32: [num_blocks, page_block_size, 1, 656] bytes (spec section 3;
  // q and out bf16, h_kv 1, h_q <= 128).
  const void* kv = nullptr;
  int64_t stride_kv_block = 0;
  int64_t stride_kv_row = 0;
  int64_t stride_kv_h = 0;

  const int32_t* block_table = nullptr;  // [b, max_blocks_per_seq]
  int64_t stride_block_table_b = 0;
  const int32_t* cache_seqlens = nullptr;  // [b]

  DecodeSchedule schedule;
  float softmax_scale = 0.0f;
  bool causal = false;

  void* out = nullptr;  // [b, s_q, h_q, d_v], dtype
  int64_t stride_out_b = 0;
  int64_t stride_out_s = 0;
  int64_t stride_out_h = 0;

  float* lse = nullptr;  // [b, h_q, s_q], natural log, -inf for empty rows
  int64_t stride_lse_b = 0;
  int64_t stride_lse_h = 0;
};

// ---------------------------------------------------------------------------
// sparse_decode: each query token attends to its topk selected tokens of an
// FP8 paged cache (and optionally to extra_topk tokens of a second cache).
// indices[i][j][k] = page * page_block_size + row; any value outside
// [0, num_blocks * page_block_size) and any position k >= topk_length[i] is
// invalid and masked.
// ---------------------------------------------------------------------------
struct SparseDecodeArgs {
  int64_t b = 0;
  int64_t s_q = 0;
  int64_t h_q = 0;
  int64_t d_qk = 576;
  int64_t d_v = 512;
  int64_t topk = 0;
  int64_t page_block_size = 64;
  int64_t num_blocks = 0;

  KVFormat kv_format = KVFormat::kFp8V32;  // kFp8V32 or kFp8Model1

  const void* q = nullptr;  // [b, s_q, h_q, d_qk] bf16
  int64_t stride_q_b = 0;
  int64_t stride_q_s = 0;
  int64_t stride_q_h = 0;

  // [num_blocks, page_block_size, 1, token_bytes] bytes; only the page
  // stride is free (rows are packed as the format says).
  const void* kv = nullptr;
  int64_t stride_kv_block = 0;

  const int32_t* indices = nullptr;  // [b, s_q, topk]
  int64_t stride_indices_b = 0;
  int64_t stride_indices_s = 0;

  const int32_t* topk_length = nullptr;  // [b] or nullptr
  const float* attn_sink = nullptr;      // [h_q] or nullptr

  // Extra cache (same format as kv, its own page size and indices).
  const void* extra_kv = nullptr;
  int64_t extra_page_block_size = 0;
  int64_t extra_num_blocks = 0;
  int64_t stride_extra_kv_block = 0;
  const int32_t* extra_indices = nullptr;  // [b, s_q, extra_topk]
  int64_t extra_topk = 0;
  int64_t stride_extra_indices_b = 0;
  int64_t stride_extra_indices_s = 0;
  const int32_t* extra_topk_length = nullptr;  // [b] or nullptr

  DecodeSchedule schedule;
  float softmax_scale = 0.0f;

  void* out = nullptr;  // [b, s_q, h_q, d_v] bf16
  int64_t stride_out_b = 0;
  int64_t stride_out_s = 0;
  int64_t stride_out_h = 0;

  float* lse = nullptr;  // [b, h_q, s_q]
  int64_t stride_lse_b = 0;
  int64_t stride_lse_h = 0;
};

// ---------------------------------------------------------------------------
// sparse_prefill: each query token attends to its topk selected rows of an
// unpaged bf16 kv. Any index outside [0, s_kv) and any position
// k >= topk_length[j] is invalid.
// ---------------------------------------------------------------------------
struct SparsePrefillArgs {
  int64_t s_q = 0;
  int64_t s_kv = 0;
  int64_t h_q = 0;
  int64_t h_kv = 1;
  int64_t d_qk = 576;
  int64_t d_v = 512;
  int64_t topk = 0;

  const void* q = nullptr;  // [s_q, h_q, d_qk] bf16
  int64_t stride_q_s = 0;
  int64_t stride_q_h = 0;

  const void* kv = nullptr;  // [s_kv, h_kv, d_qk] bf16
  int64_t stride_kv_s = 0;
  int64_t stride_kv_h = 0;

  const int32_t* indices = nullptr;  // [s_q, h_kv, topk]
  int64_t stride_indices_s = 0;
  int64_t stride_indices_h = 0;

  const float* attn_sink = nullptr;      // [h_q] or nullptr
  const int32_t* topk_length = nullptr;  // [s_q] or nullptr
  float softmax_scale = 0.0f;

  void* out = nullptr;  // [s_q, h_q, d_v] bf16
  int64_t stride_out_s = 0;
  int64_t stride_out_h = 0;

  float* max_logits = nullptr;  // [s_q, h_q]
  int64_t stride_max_logits_s = 0;

  float* lse = nullptr;  // [s_q, h_q]
  int64_t stride_lse_s = 0;
};

// ---------------------------------------------------------------------------
// combine: merge num_splits partial results of the same queries over
// disjoint key sets (split-KV, or the shards of a context-parallel decode)
// into the attention over the union. A partial with lse = -inf is empty and
// contributes nothing (its out is never used, so it may hold NaN).
// ---------------------------------------------------------------------------
struct CombineArgs {
  int64_t num_splits = 0;
  int64_t b = 0;
  int64_t s_q = 0;
  int64_t h_q = 0;
  int64_t d_v = 512;

  DType partial_dtype = DType::kFloat32;  // of out_partial
  const void* out_partial = nullptr;      // [num_splits, b, s_q, h_q, d_v]
  int64_t stride_out_partial_split = 0;
  int64_t stride_out_partial_b = 0;
  int64_t stride_out_partial_s = 0;
  int64_t stride_out_partial_h = 0;

  const float* lse_partial = nullptr;  // [num_splits, b, h_q, s_q], natural log
  int64_t stride_lse_partial_split = 0;
  int64_t stride_lse_partial_b = 0;
  int64_t stride_lse_partial_h = 0;

  const float* attn_sink = nullptr;  // [h_q] or nullptr, applied to the union

  DType dtype = DType::kBFloat16;  // of out
  void* out = nullptr;             // [b, s_q, h_q, d_v]
  int64_t stride_out_b = 0;
  int64_t stride_out_s = 0;
  int64_t stride_out_h = 0;

  float* lse = nullptr;  // [b, h_q, s_q]
  int64_t stride_lse_b = 0;
  int64_t stride_lse_h = 0;
};

}  // namespace flashmla
