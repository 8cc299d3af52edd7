// Valid arguments of every operation, for shapes given by the test: densely
// packed strides, a matching decode schedule, and fake device addresses
// (16-byte aligned, far apart) that validate() accepts without a GPU. The
// GPU tests swap in real buffers of the same layout.
#pragma once

#include <cmath>
#include <cstdint>

#include "flashmla/flashmla.h"

namespace flashmla::test {

template <typename T = void>
T* fake_address(uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

constexpr int32_t kFakeSmCount = 132;  // H100 SXM

// ----- plan_decode ---------------------------------------------------------------

struct PlanShape {
  DecodeKind kind = DecodeKind::kDense;
  int64_t b = 4;
  int64_t s_q = 2;
  int64_t h_q = 16;
  int64_t h_kv = 1;
  int64_t topk = 0;
  int64_t extra_topk = 0;
};

inline PlanDecodeArgs plan_decode_args(const PlanShape& s = {}) {
  PlanDecodeArgs a;
  a.kind = s.kind;
  a.b = s.b;
  a.s_q = s.s_q;
  a.h_q = s.h_q;
  a.h_kv = s.h_kv;
  a.lengths = fake_address<const int32_t>(0x500000);
  a.topk = s.topk;
  a.extra_topk = s.extra_topk;
  a.extra_lengths = s.extra_topk > 0 ? fake_address<const int32_t>(0x510000) : nullptr;
  a.num_sms = kFakeSmCount;
  a.schedule = fake_address(0x600000);
  return a;
}

// ----- dense_decode --------------------------------------------------------------

struct DenseShape {
  int64_t b = 4;
  int64_t s_q = 2;
  int64_t h_q = 16;
  int64_t h_kv = 1;
  int64_t d_qk = 576;
  int64_t d_v = 512;
  int64_t page_block_size = 64;
  int64_t num_blocks = 100;
  int64_t max_blocks_per_seq = 8;
  DType dtype = DType::kBFloat16;
  KVFormat kv_format = KVFormat::kNative;
};

inline DenseDecodeArgs dense_decode_args(const DenseShape& s = {}) {
  DenseDecodeArgs a;
  a.b = s.b;
  a.s_q = s.s_q;
  a.h_q = s.h_q;
  a.h_kv = s.h_kv;
  a.d_qk = s.d_qk;
  a.d_v = s.d_v;
  a.page_block_size = s.page_block_size;
  a.num_blocks = s.num_blocks;
  a.max_blocks_per_seq = s.max_blocks_per_seq;
  a.dtype = s.dtype;
  a.kv_format = s.kv_format;

  a.q = fake_address<const void>(0x10000);
  a.stride_q_h = s.d_qk;
  a.stride_q_s = s.h_q * a.stride_q_h;
  a.stride_q_b = s.s_q * a.stride_q_s;

  a.kv = fake_address<const void>(0x1000000);
  const int64_t token = s.kv_format == KVFormat::kNative ? s.d_qk : kv_format_token_bytes(s.kv_format);
  a.stride_kv_h = token;
  a.stride_kv_row = s.h_kv * token;
  a.stride_kv_block = s.page_block_size * a.stride_kv_row;

  a.block_table = fake_address<const int32_t>(0x400000);
  a.stride_block_table_b = s.max_blocks_per_seq;
  a.cache_seqlens = fake_address<const int32_t>(0x500000);

  PlanDecodeArgs plan = plan_decode_args({.b = s.b, .s_q = s.s_q, .h_q = s.h_q, .h_kv = s.h_kv});
  a.schedule = describe_schedule(plan);
  a.softmax_scale = 1.0f / std::sqrt(float(s.d_qk));

  a.out = fake_address(0x700000);
  a.stride_out_h = s.d_v;
  a.stride_out_s = s.h_q * a.stride_out_h;
  a.stride_out_b = s.s_q * a.stride_out_s;
  a.lse = fake_address<float>(0x800000);
  a.stride_lse_h = s.s_q;
  a.stride_lse_b = s.h_q * a.stride_lse_h;
  return a;
}

// ----- sparse_decode -------------------------------------------------------------

struct SparseShape {
  int64_t b = 3;
  int64_t s_q = 2;
  int64_t h_q = 64;
  int64_t topk = 128;
  int64_t page_block_size = 64;
  int64_t num_blocks = 50;
  KVFormat kv_format = KVFormat::kFp8V32;
  int64_t extra_topk = 0;  // > 0 adds an extra cache
};

inline SparseDecodeArgs sparse_decode_args(const SparseShape& s = {}) {
  SparseDecodeArgs a;
  a.b = s.b;
  a.s_q = s.s_q;
  a.h_q = s.h_q;
  a.d_qk = kv_format_d_qk(s.kv_format);
  a.d_v = 512;
  a.topk = s.topk;
  a.page_block_size = s.page_block_size;
  a.num_blocks = s.num_blocks;
  a.kv_format = s.kv_format;

  a.q = fake_address<const void>(0x10000);
  a.stride_q_h = a.d_qk;
  a.stride_q_s = s.h_q * a.stride_q_h;
  a.stride_q_b = s.s_q * a.stride_q_s;

  const int64_t page_bytes = s.page_block_size * kv_format_token_bytes(s.kv_format);
  a.kv = fake_address<const void>(0x1000000);
  a.stride_kv_block = (page_bytes + 15) / 16 * 16;

  a.indices = fake_address<const int32_t>(0x400000);
  a.stride_indices_s = s.topk;
  a.stride_indices_b = s.s_q * a.stride_indices_s;

  if (s.extra_topk > 0) {
    a.extra_kv = fake_address<const void>(0x2000000);
    a.extra_page_block_size = 64;
    a.extra_num_blocks = 10;
    a.stride_extra_kv_block = 64 * kv_format_token_bytes(s.kv_format);
    a.extra_indices = fake_address<const int32_t>(0x420000);
    a.extra_topk = s.extra_topk;
    a.stride_extra_indices_s = s.extra_topk;
    a.stride_extra_indices_b = s.s_q * a.stride_extra_indices_s;
  }

  PlanDecodeArgs plan = plan_decode_args({.kind = DecodeKind::kSparse, .b = s.b, .s_q = s.s_q,
                                          .h_q = s.h_q, .h_kv = 1, .topk = s.topk,
                                          .extra_topk = s.extra_topk});
  a.schedule = describe_schedule(plan);
  a.softmax_scale = 1.0f / std::sqrt(float(a.d_qk));

  a.out = fake_address(0x700000);
  a.stride_out_h = a.d_v;
  a.stride_out_s = s.h_q * a.stride_out_h;
  a.stride_out_b = s.s_q * a.stride_out_s;
  a.lse = fake_address<float>(0x800000);
  a.stride_lse_h = s.s_q;
  a.stride_lse_b = s.h_q * a.stride_lse_h;
  return a;
}

// ----- sparse_prefill ------------------------------------------------------------

struct PrefillShape {
  int64_t s_q = 100;
  int64_t s_kv = 1000;
  int64_t h_q = 64;
  int64_t h_kv = 1;
  int64_t d_qk = 576;
  int64_t d_v = 512;
  int64_t topk = 256;
};

inline SparsePrefillArgs sparse_prefill_args(const PrefillShape& s = {}) {
  SparsePrefillArgs a;
  a.s_q = s.s_q;
  a.s_kv = s.s_kv;
  a.h_q = s.h_q;
  a.h_kv = s.h_kv;
  a.d_qk = s.d_qk;
  a.d_v = s.d_v;
  a.topk = s.topk;

  a.q = fake_address<const void>(0x10000);
  a.stride_q_h = s.d_qk;
  a.stride_q_s = s.h_q * a.stride_q_h;
  a.kv = fake_address<const void>(0x1000000);
  a.stride_kv_h = s.d_qk;
  a.stride_kv_s = s.h_kv * a.stride_kv_h;
  a.indices = fake_address<const int32_t>(0x400000);
  a.stride_indices_h = s.topk;
  a.stride_indices_s = s.h_kv * a.stride_indices_h;
  a.softmax_scale = 1.0f / std::sqrt(float(s.d_qk));

  a.out = fake_address(0x700000);
  a.stride_out_h = s.d_v;
  a.stride_out_s = s.h_q * a.stride_out_h;
  a.max_logits = fake_address<float>(0x800000);
  a.stride_max_logits_s = s.h_q;
  a.lse = fake_address<float>(0x900000);
  a.stride_lse_s = s.h_q;
  return a;
}

// ----- combine -------------------------------------------------------------------

struct CombineShape {
  int64_t num_splits = 4;
  int64_t b = 3;
  int64_t s_q = 2;
  int64_t h_q = 16;
  int64_t d_v = 512;
  DType partial_dtype = DType::kFloat32;
  DType dtype = DType::kBFloat16;
};

inline CombineArgs combine_args(const CombineShape& s = {}) {
  CombineArgs a;
  a.num_splits = s.num_splits;
  a.b = s.b;
  a.s_q = s.s_q;
  a.h_q = s.h_q;
  a.d_v = s.d_v;
  a.partial_dtype = s.partial_dtype;
  a.out_partial = fake_address<const void>(0x10000);
  a.stride_out_partial_h = s.d_v;
  a.stride_out_partial_s = s.h_q * a.stride_out_partial_h;
  a.stride_out_partial_b = s.s_q * a.stride_out_partial_s;
  a.stride_out_partial_split = s.b * a.stride_out_partial_b;
  a.lse_partial = fake_address<const float>(0x1000000);
  a.stride_lse_partial_h = s.s_q;
  a.stride_lse_partial_b = s.h_q * a.stride_lse_partial_h;
  a.stride_lse_partial_split = s.b * a.stride_lse_partial_b;
  a.dtype = s.dtype;
  a.out = fake_address(0x700000);
  a.stride_out_h = s.d_v;
  a.stride_out_s = s.h_q * a.stride_out_h;
  a.stride_out_b = s.s_q * a.stride_out_s;
  a.lse = fake_address<float>(0x800000);
  a.stride_lse_h = s.s_q;
  a.stride_lse_b = s.h_q * a.stride_lse_h;
  return a;
}

}  // namespace flashmla::test
