// FlashMLA's own sm90 kernels as a benchmark backend (backend.h), on exactly
// the workloads this library is timed on, so that "FlashMLA measured in the
// same run" (the issues' acceptance) can be had on any GPU the project is lent.
// Built only with -DFLASHMLA_PEER_SOURCE=<a FlashMLA checkout>; nothing of
// FlashMLA is in this repository. This file fills FlashMLA's parameter structs
// the way its Python API does (csrc/api/*.h at 9241ae3) and launches its
// host entry points, which are torch-free:
//   dense decode   scheduler metadata once, then splitkv kernel + combine
//   sparse decode  the same with the FP8 V32 kernel (64 or 128 heads)
//   sparse prefill the phase-1 kernel (64 or 128 heads)
// Head counts FlashMLA does not take (sparse ops below 64 heads) run as
// engines run them (shared/bench/suite.md): q zero-padded to 64 heads once,
// outside the timed calls; collect() copies the real heads back.
// FlashMLA's launchers exit the process on a CUDA error: a benchmark-only
// backend, never linked into the library.
#include "backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "params.h"
#include "sm90/decode/dense/splitkv_mla.h"
#include "sm90/decode/sparse_fp8/splitkv_mla.h"
#include "sm90/prefill/sparse/phase1.h"
#include "smxx/decode/combine/combine.h"
#include "smxx/decode/get_decoding_sched_meta/get_decoding_sched_meta.h"

namespace flashmla::bench {

namespace {

constexpr int kPage = 64;            // FlashMLA's page size (and ours in the suite)
constexpr int kFixedOverhead = 5;    // its scheduler's per-split cost, in blocks
constexpr int kV32TokenBytes = 656;  // spec section 3
constexpr float kLog2e = 1.4426950408889634f;

Status error_status(StatusCode code, const char* message) {
  Status s;
  s.code = code;
  std::snprintf(s.message, sizeof(s.message), "FlashMLA backend: %s", message);
  return s;
}

Status cuda_error(const char* what, cudaError_t err) {
  Status s;
  s.code = StatusCode::kCudaError;
  std::snprintf(s.message, sizeof(s.message), "FlashMLA backend: %s: %s", what, cudaGetErrorString(err));
  return s;
}

// lse as FlashMLA writes it, [rows][s][h] (dense: its q_seq_per_hk rows are
// s * h_q + h), into ours, [rows][h][s].
__global__ void transpose_lse_kernel(const float* src, float* dst, int64_t rows, int s_q, int h_q, int h_src) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t total = rows * s_q * h_q;
  if (i >= total) return;
  const int s = int(i % s_q);
  const int h = int((i / s_q) % h_q);
  const int64_t row = i / (int64_t(s_q) * h_q);
  dst[i] = src[(row * s_q + s) * h_src + h];
}

class FlashMlaBackend : public Backend {
 public:
  Status prepare(const Case& c, const IndexData& index, DeviceWorkload* dw, int32_t num_sms,
                 cudaStream_t stream) override {
    c_ = c;
    dw_ = dw;
    num_blocks_ = int(index.num_blocks);
    max_blocks_ = int(index.max_blocks);
    scale_ = float(1.0 / std::sqrt(double(c.d_qk)));
    // Sparse kernels take 64 or 128 heads: fewer run padded to 64.
    heads_ = c.op == Op::kDenseDecode ? int(c.h_q) : (c.h_q < 64 ? 64 : int(c.h_q));
    if (c.op != Op::kDenseDecode && heads_ != 64 && heads_ != 128) {
      return error_status(StatusCode::kNotSupported, "sparse kernels take at most 128 heads, in tiles of 64");
    }
    if (c.op == Op::kDenseDecode && c.fp8_kv) {
      return error_status(StatusCode::kNotSupported, "FlashMLA has no dense decode over an FP8 cache");
    }
    if (c.op == Op::kDenseDecode && (c.h_kv != 1 || c.d_qk != 576)) {
      return error_status(StatusCode::kNotSupported, "the backend runs dense decode with h_kv 1 and d_qk 576");
    }
    if (c.op == Op::kSparseDecode && c.d_qk != 576) {
      return error_status(StatusCode::kNotSupported, "the backend runs sparse decode on the V32 format only");
    }
    padded_ = heads_ != int(c.h_q);
    const int64_t rows = c.op == Op::kSparsePrefill ? int64_t(c.s_q) : int64_t(c.b) * c.s_q;  // query tokens
    cudaError_t err = cudaSuccess;
    if (padded_) {
      // q [tokens][heads_][d_qk] with zeros past h_q; its own out, lse, max_logits.
      const size_t q_row = size_t(c.h_q) * c.d_qk * 2;
      const size_t q_pad_row = size_t(heads_) * c.d_qk * 2;
      err = q_pad_.allocate(size_t(rows) * q_pad_row);
      if (err == cudaSuccess) err = cudaMemsetAsync(q_pad_.get(), 0, q_pad_.bytes(), stream);
      if (err == cudaSuccess) {
        err = cudaMemcpy2DAsync(q_pad_.get(), q_pad_row, dw->q.get(), q_row, q_row, size_t(rows),
                                cudaMemcpyDeviceToDevice, stream);
      }
      if (err == cudaSuccess) err = out_pad_.allocate(size_t(rows) * heads_ * c.d_v * 2);
      if (err != cudaSuccess) return cuda_error("padded buffers", err);
    }
    if (c.op == Op::kSparsePrefill) {
      if (padded_) {
        err = lse_own_.allocate(size_t(rows) * heads_ * 4);
        if (err == cudaSuccess) err = max_logits_own_.allocate(size_t(rows) * heads_ * 4);
        if (err != cudaSuccess) return cuda_error("padded lse", err);
      }
      num_sms_ = num_sms;
      return Status{};
    }

    // Decode: FlashMLA's scheduler, run once, as its API does with reused metadata.
    if (c.op == Op::kDenseDecode) {
      const int q_rows = int(c.s_q * c.h_q);  // q_seq_per_hk with h_kv 1
      num_sm_parts_ = std::max(num_sms / ((q_rows + 63) / 64), 1);
    } else {
      num_sm_parts_ = std::max(num_sms / int(c.s_q) / (heads_ / 64), 1);
    }
    err = sched_meta_.allocate(size_t(num_sm_parts_) * sizeof(DecodingSchedMeta));
    if (err == cudaSuccess) err = num_splits_.allocate(size_t(c.b + 1) * 4);
    const int64_t splits = int64_t(c.b) + num_sm_parts_;
    if (err == cudaSuccess) err = lse_accum_.allocate(size_t(splits) * c.s_q * heads_ * 4);
    if (err == cudaSuccess) err = o_accum_.allocate(size_t(splits) * c.s_q * heads_ * c.d_v * 4);
    // FlashMLA's lse is [b][s][h]; ours is [b][h][s].
    if (err == cudaSuccess) err = lse_own_.allocate(size_t(rows) * heads_ * 4);
    if (err != cudaSuccess) return cuda_error("scheduler and split buffers", err);

    GetDecodeSchedMetaParams m = {};
    m.b = int(c.b);
    m.s_q = int(c.s_q);
    m.block_size_n = kPage;
    m.fixed_overhead_num_blocks = kFixedOverhead;
    m.topk = c.op == Op::kSparseDecode ? int(c.topk) : -1;
    m.extra_topk = -1;
    m.topk_length = nullptr;
    m.extra_topk_length = nullptr;
    m.seqlens_k_ptr = c.op == Op::kDenseDecode ? dw->lengths.as<int>() : nullptr;
    m.tile_scheduler_metadata_ptr = sched_meta_.as<DecodingSchedMeta>();
    m.num_splits_ptr = num_splits_.as<int>();
    m.num_sm_parts = num_sm_parts_;
    m.stream = stream;
    smxx::decode::run_get_decoding_sched_meta_kernel(m);
    err = cudaGetLastError();
    if (err != cudaSuccess) return cuda_error("scheduler", err);
    return Status{};
  }

  Status call(int64_t pool, cudaStream_t stream) override {
    void* kv = dw_->kv_pools[size_t(pool)].get();
    switch (c_.op) {
      case Op::kDenseDecode: call_dense(kv, stream); break;
      case Op::kSparseDecode: call_sparse_decode(kv, stream); break;
      case Op::kSparsePrefill: call_prefill(kv, stream); break;
    }
    const cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? Status{} : cuda_error("launch", err);
  }

  Status collect(cudaStream_t stream) override {
    const int64_t rows = c_.op == Op::kSparsePrefill ? int64_t(c_.s_q) : int64_t(c_.b) * c_.s_q;
    cudaError_t err = cudaSuccess;
    if (padded_) {
      const size_t out_row = size_t(c_.h_q) * c_.d_v * 2;
      err = cudaMemcpy2DAsync(dw_->out.get(), out_row, out_pad_.get(), size_t(heads_) * c_.d_v * 2, out_row,
                              size_t(rows), cudaMemcpyDeviceToDevice, stream);
    }
    if (err == cudaSuccess && c_.op == Op::kSparsePrefill && padded_) {
      // Prefill's lse and max_logits are [s_q][h] in both: drop the padding heads.
      const size_t row = size_t(c_.h_q) * 4;
      err = cudaMemcpy2DAsync(dw_->lse.get(), row, lse_own_.get(), size_t(heads_) * 4, row, size_t(rows),
                              cudaMemcpyDeviceToDevice, stream);
      if (err == cudaSuccess) {
        err = cudaMemcpy2DAsync(dw_->max_logits.get(), row, max_logits_own_.get(), size_t(heads_) * 4, row,
                                size_t(rows), cudaMemcpyDeviceToDevice, stream);
      }
    }
    if (err == cudaSuccess && c_.op != Op::kSparsePrefill) {
      const int64_t total = int64_t(c_.b) * c_.s_q * c_.h_q;
      transpose_lse_kernel<<<unsigned((total + 255) / 256), 256, 0, stream>>>(
          lse_own_.as<float>(), dw_->lse.as<float>(), int64_t(c_.b), int(c_.s_q), int(c_.h_q), heads_);
      err = cudaGetLastError();
    }
    return err == cudaSuccess ? Status{} : cuda_error("collect", err);
  }

 private:
  void* q() const { return padded_ ? q_pad_.get() : dw_->q.get(); }
  void* out() const { return padded_ ? out_pad_.get() : dw_->out.get(); }

  // Fills the combine that follows both decode kernels: lse [b][s][h],
  // out [b][s][h][d_v], partials [split][s][h](.[d_v]).
  CombineParams combine_params(cudaStream_t stream) {
    CombineParams p = {};
    p.b = int(c_.b);
    p.s_q = int(c_.s_q);
    p.h_q = heads_;
    p.d_v = int(c_.d_v);
    p.lse = lse_own_.as<float>();
    p.out = out();
    p.stride_lse_b = int(c_.s_q) * heads_;
    p.stride_lse_s_q = heads_;
    p.stride_o_b = int(c_.s_q) * heads_ * int(c_.d_v);
    p.stride_o_s_q = heads_ * int(c_.d_v);
    p.stride_o_h_q = int(c_.d_v);
    p.lse_accum = lse_accum_.as<float>();
    p.o_accum = o_accum_.as<float>();
    p.stride_lse_accum_split = int(c_.s_q) * heads_;
    p.stride_lse_accum_s_q = heads_;
    p.stride_o_accum_split = int(c_.s_q) * heads_ * int(c_.d_v);
    p.stride_o_accum_s_q = heads_ * int(c_.d_v);
    p.stride_o_accum_h_q = int(c_.d_v);
    p.tile_scheduler_metadata_ptr = sched_meta_.as<DecodingSchedMeta>();
    p.num_splits_ptr = num_splits_.as<int>();
    p.num_sm_parts = num_sm_parts_;
    p.attn_sink = nullptr;
    p.stream = stream;
    return p;
  }

  // q [b][s][h][d] seen as FlashMLA's [b][s * h][1][d]: with one KV head its
  // rows are (token, head) pairs, and out / lse follow the same order.
  void call_dense(void* kv, cudaStream_t stream) {
    const int q_rows = int(c_.s_q * c_.h_q);
    DenseAttnDecodeParams p = {};
    p.b = int(c_.b);
    p.s_q = int(c_.s_q);
    p.q_seq_per_hk = q_rows;
    p.d = int(c_.d_qk);
    p.d_v = int(c_.d_v);
    p.h_q = int(c_.h_q);
    p.h_k = 1;
    p.num_blocks = num_blocks_;
    p.q_head_per_hk = int(c_.h_q);
    p.is_causal = c_.causal && c_.s_q > 1;
    p.scale_softmax = scale_;
    p.scale_softmax_log2 = scale_ * kLog2e;
    p.q_ptr = dw_->q.get();
    p.k_ptr = kv;
    p.o_ptr = dw_->out.get();
    p.softmax_lse_ptr = lse_own_.as<float>();
    p.q_batch_stride = int64_t(q_rows) * c_.d_qk;
    p.k_batch_stride = int64_t(kPage) * c_.d_qk;
    p.o_batch_stride = int64_t(q_rows) * c_.d_v;
    p.q_row_stride = c_.d_qk;
    p.k_row_stride = c_.d_qk;
    p.o_row_stride = c_.d_v;
    p.q_head_stride = c_.d_qk;
    p.k_head_stride = c_.d_qk;
    p.o_head_stride = int64_t(q_rows) * c_.d_v;
    p.block_table = dw_->block_table.as<int>();
    p.block_table_batch_stride = max_blocks_;
    p.page_block_size = kPage;
    p.seqlens_k_ptr = dw_->lengths.as<int>();
    p.tile_scheduler_metadata_ptr = sched_meta_.as<DecodingSchedMeta>();
    p.num_sm_parts = num_sm_parts_;
    p.num_splits_ptr = num_splits_.as<int>();
    p.total_num_splits = int(c_.b) + num_sm_parts_;
    p.softmax_lseaccum_ptr = lse_accum_.as<float>();
    p.oaccum_ptr = o_accum_.as<float>();
    p.stream = stream;
    sm90::run_flash_splitkv_mla_kernel<cutlass::bfloat16_t>(p);
    CombineParams cp = combine_params(stream);
    smxx::decode::run_flash_mla_combine_kernel<cutlass::bfloat16_t>(cp);
  }

  void call_sparse_decode(void* kv, cudaStream_t stream) {
    SparseAttnDecodeParams p = {};
    p.b = int(c_.b);
    p.s_q = int(c_.s_q);
    p.h_q = heads_;
    p.h_kv = 1;
    p.d_qk = int(c_.d_qk);
    p.d_v = int(c_.d_v);
    p.sm_scale = scale_;
    p.sm_scale_div_log2 = scale_ * kLog2e;
    p.num_blocks = num_blocks_;
    p.page_block_size = kPage;
    p.topk = int(c_.topk);
    p.model_type = ModelType::V32;
    p.q = static_cast<cutlass::bfloat16_t*>(q());
    p.kv = static_cast<cutlass::bfloat16_t*>(kv);  // FlashMLA's type; the bytes are V32 tokens
    p.indices = dw_->indices.as<int>();
    p.topk_length = nullptr;
    p.attn_sink = nullptr;
    p.lse = lse_own_.as<float>();
    p.out = static_cast<cutlass::bfloat16_t*>(out());
    p.stride_q_b = int(c_.s_q) * heads_ * int(c_.d_qk);
    p.stride_q_s_q = heads_ * int(c_.d_qk);
    p.stride_q_h_q = int(c_.d_qk);
    p.stride_kv_block = kPage * kV32TokenBytes;  // bytes: the cache's element is one byte
    p.stride_kv_row = kV32TokenBytes;
    p.stride_indices_b = int(c_.s_q * c_.topk);
    p.stride_indices_s_q = int(c_.topk);
    p.stride_lse_b = int(c_.s_q) * heads_;
    p.stride_lse_s_q = heads_;
    p.stride_o_b = int(c_.s_q) * heads_ * int(c_.d_v);
    p.stride_o_s_q = heads_ * int(c_.d_v);
    p.stride_o_h_q = int(c_.d_v);
    p.stream = stream;
    p.lse_accum = lse_accum_.as<float>();
    p.o_accum = o_accum_.as<float>();
    p.stride_lse_accum_split = int(c_.s_q) * heads_;
    p.stride_lse_accum_s_q = heads_;
    p.stride_o_accum_split = int(c_.s_q) * heads_ * int(c_.d_v);
    p.stride_o_accum_s_q = heads_ * int(c_.d_v);
    p.stride_o_accum_h_q = int(c_.d_v);
    p.tile_scheduler_metadata_ptr = sched_meta_.as<DecodingSchedMeta>();
    p.num_splits_ptr = num_splits_.as<int>();
    p.num_sm_parts = num_sm_parts_;
    if (heads_ == 64) {
      sm90::decode::sparse_fp8::run_flash_splitkv_mla_fp8_sparse_kernel<ModelType::V32, 64>(p);
    } else {
      sm90::decode::sparse_fp8::run_flash_splitkv_mla_fp8_sparse_kernel<ModelType::V32, 128>(p);
    }
    CombineParams cp = combine_params(stream);
    smxx::decode::run_flash_mla_combine_kernel<cutlass::bfloat16_t>(cp);
  }

  void call_prefill(void* kv, cudaStream_t stream) {
    SparseAttnFwdParams p = {};
    p.s_q = int(c_.s_q);
    p.s_kv = int(c_.s_kv);
    p.h_q = heads_;
    p.h_kv = 1;
    p.d_qk = int(c_.d_qk);
    p.d_v = int(c_.d_v);
    p.topk = int(c_.topk);
    p.sm_scale = scale_;
    p.sm_scale_div_log2 = scale_ * kLog2e;
    p.q = static_cast<cutlass::bfloat16_t*>(q());
    p.kv = static_cast<cutlass::bfloat16_t*>(kv);
    p.indices = dw_->indices.as<int>();
    p.attn_sink = nullptr;
    p.topk_length = nullptr;
    p.stride_q_s_q = heads_ * int(c_.d_qk);
    p.stride_q_h_q = int(c_.d_qk);
    p.stride_kv_s_kv = int(c_.d_qk);
    p.stride_kv_h_kv = int(c_.d_qk);
    p.stride_indices_s_q = int(c_.topk);
    p.stride_indices_h_kv = int(c_.topk);
    p.out = static_cast<cutlass::bfloat16_t*>(out());
    p.max_logits = padded_ ? max_logits_own_.as<float>() : dw_->max_logits.as<float>();
    p.lse = padded_ ? lse_own_.as<float>() : dw_->lse.as<float>();
    p.num_sm = num_sms_;
    p.stream = stream;
    if (c_.d_qk == 576) {
      sm90::fwd::run_fwd_phase1_kernel<576, false>(p);
    } else {
      sm90::fwd::run_fwd_phase1_kernel<512, false>(p);
    }
  }

  Case c_;
  DeviceWorkload* dw_ = nullptr;
  int num_blocks_ = 0;
  int max_blocks_ = 0;
  int heads_ = 0;
  bool padded_ = false;
  float scale_ = 0.f;
  int num_sms_ = 0;
  int num_sm_parts_ = 0;
  DeviceBuffer sched_meta_;
  DeviceBuffer num_splits_;
  DeviceBuffer lse_accum_;
  DeviceBuffer o_accum_;
  DeviceBuffer lse_own_;
  DeviceBuffer max_logits_own_;
  DeviceBuffer q_pad_;
  DeviceBuffer out_pad_;
};

}  // namespace

std::unique_ptr<Backend> make_flashmla_backend() { return std::make_unique<FlashMlaBackend>(); }

}  // namespace flashmla::bench
