#include "op_args.h"

#include <cmath>

namespace flashmla::bench {

Tensors host_tensors(HostWorkload& hw) {
  Tensors t;
  t.q = hw.q.data();
  t.kv = v32_pool(hw.shape) ? static_cast<const void*>(hw.kv_fp8.data()) : static_cast<const void*>(hw.kv.data());
  t.block_table = hw.index.block_table.data();
  t.lengths = hw.index.lengths.data();
  t.indices = hw.index.indices.data();
  t.out = hw.out.data();
  t.lse = hw.lse.data();
  t.max_logits = hw.max_logits.data();
  return t;
}

Tensors device_tensors(DeviceWorkload& dw, int64_t pool) {
  Tensors t;
  t.q = dw.q.get();
  t.kv = dw.kv_pools[size_t(pool)].get();
  t.block_table = dw.block_table.as<const int32_t>();
  t.lengths = dw.lengths.as<const int32_t>();
  t.indices = dw.indices.as<const int32_t>();
  t.out = dw.out.get();
  t.lse = dw.lse.as<float>();
  t.max_logits = dw.max_logits.as<float>();
  return t;
}

namespace {

// suite.md: softmax_scale = d_qk ** -0.5.
float softmax_scale(const Case& c) { return float(1.0 / std::sqrt(double(c.d_qk))); }

}  // namespace

DenseDecodeArgs make_dense_decode_args(const Case& c, const IndexData& index, const Tensors& t) {
  DenseDecodeArgs a;
  a.b = c.b;
  a.s_q = c.s_q;
  a.h_q = c.h_q;
  a.h_kv = c.h_kv;
  a.d_qk = c.d_qk;
  a.d_v = c.d_v;
  a.page_block_size = kPageBlockSize;
  a.num_blocks = index.num_blocks;
  a.max_blocks_per_seq = index.max_blocks;
  a.dtype = DType::kBFloat16;
  a.kv_format = KVFormat::kNative;
  a.q = t.q;
  a.stride_q_h = c.d_qk;
  a.stride_q_s = c.h_q * c.d_qk;
  a.stride_q_b = c.s_q * c.h_q * c.d_qk;
  a.kv = t.kv;
  a.stride_kv_h = c.d_qk;
  a.stride_kv_row = c.h_kv * c.d_qk;
  a.stride_kv_block = kPageBlockSize * c.h_kv * c.d_qk;
  if (c.fp8_kv) {  // [num_blocks, 64, 1, 656] bytes
    a.kv_format = KVFormat::kFp8V32;
    a.stride_kv_h = kV32TokenBytes;
    a.stride_kv_row = kV32TokenBytes;
    a.stride_kv_block = kPageBlockSize * kV32TokenBytes;
  }
  a.block_table = t.block_table;
  a.stride_block_table_b = index.max_blocks;
  a.cache_seqlens = t.lengths;
  a.softmax_scale = softmax_scale(c);
  a.causal = c.causal;
  a.out = t.out;
  a.stride_out_h = c.d_v;
  a.stride_out_s = c.h_q * c.d_v;
  a.stride_out_b = c.s_q * c.h_q * c.d_v;
  a.lse = t.lse;
  a.stride_lse_h = c.s_q;
  a.stride_lse_b = c.h_q * c.s_q;
  return a;
}

SparseDecodeArgs make_sparse_decode_args(const Case& c, const IndexData& index, const Tensors& t) {
  SparseDecodeArgs a;
  a.b = c.b;
  a.s_q = c.s_q;
  a.h_q = c.h_q;
  a.d_qk = c.d_qk;
  a.d_v = c.d_v;
  a.topk = c.topk;
  a.page_block_size = kPageBlockSize;
  a.num_blocks = index.num_blocks;
  a.kv_format = KVFormat::kFp8V32;
  a.q = t.q;
  a.stride_q_h = c.d_qk;
  a.stride_q_s = c.h_q * c.d_qk;
  a.stride_q_b = c.s_q * c.h_q * c.d_qk;
  a.kv = t.kv;
  a.stride_kv_block = kPageBlockSize * kV32TokenBytes;
  a.indices = t.indices;
  a.stride_indices_s = c.topk;
  a.stride_indices_b = c.s_q * c.topk;
  a.softmax_scale = softmax_scale(c);
  a.out = t.out;
  a.stride_out_h = c.d_v;
  a.stride_out_s = c.h_q * c.d_v;
  a.stride_out_b = c.s_q * c.h_q * c.d_v;
  a.lse = t.lse;
  a.stride_lse_h = c.s_q;
  a.stride_lse_b = c.h_q * c.s_q;
  return a;
}

SparsePrefillArgs make_sparse_prefill_args(const Case& c, const Tensors& t) {
  SparsePrefillArgs a;
  a.s_q = c.s_q;
  a.s_kv = c.s_kv;
  a.h_q = c.h_q;
  a.h_kv = 1;
  a.d_qk = c.d_qk;
  a.d_v = c.d_v;
  a.topk = c.topk;
  a.q = t.q;
  a.stride_q_h = c.d_qk;
  a.stride_q_s = c.h_q * c.d_qk;
  a.kv = t.kv;
  a.stride_kv_h = c.d_qk;
  a.stride_kv_s = c.d_qk;
  a.indices = t.indices;
  a.stride_indices_h = c.topk;
  a.stride_indices_s = c.topk;
  a.softmax_scale = softmax_scale(c);
  a.out = t.out;
  a.stride_out_h = c.d_v;
  a.stride_out_s = c.h_q * c.d_v;
  a.max_logits = t.max_logits;
  a.stride_max_logits_s = c.h_q;
  a.lse = t.lse;
  a.stride_lse_s = c.h_q;
  return a;
}

PlanDecodeArgs make_plan_args(const Case& c, const Tensors& t, int32_t num_sms) {
  PlanDecodeArgs p;
  p.kind = c.op == Op::kSparseDecode ? DecodeKind::kSparse : DecodeKind::kDense;
  p.b = c.b;
  p.s_q = c.s_q;
  p.h_q = c.h_q;
  p.h_kv = c.op == Op::kSparseDecode ? 1 : c.h_kv;
  p.lengths = c.op == Op::kSparseDecode ? nullptr : t.lengths;
  p.topk = c.op == Op::kSparseDecode ? c.topk : 0;
  p.num_sms = num_sms;
  return p;
}

}  // namespace flashmla::bench
