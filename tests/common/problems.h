// Adversarial input generators for the three attention operations. Each
// problem owns its host buffers and describes the shapes and strides in an
// Args struct whose pointers are filled by host_args() (CPU reference) or
// by to_device() in device_mirror.h (GPU runs), so both see the same data.
//
// Every generator follows the style guide's test rules: values N(0,1)/10
// clamped to [-1, 1] and rounded to the input dtype; NaN in every KV slot
// that is not a valid key (page tails, unused pages and tokens, row
// padding, the bytes of unused FP8 tokens); garbage ids in unused
// block-table slots; invalid-index zoos mixed with valid indices and
// duplicates; NaN in the padding of strided tensors.
#pragma once

#include <cstdint>
#include <vector>

#include "common/outputs.h"
#include "common/strided.h"
#include "flashmla/args.h"

namespace flashmla::test {

// ---------------------------------------------------------------- dense decode
struct DenseDecodeConfig {
  int64_t b = 2;
  int64_t s_q = 1;
  int64_t h_q = 16;
  int64_t h_kv = 1;
  int64_t d_qk = 576;
  int64_t d_v = 512;
  int64_t page_block_size = 64;
  DType dtype = DType::kBFloat16;           // of q, out (and kv when native)
  KVFormat kv_format = KVFormat::kNative;   // or kFp8V32 (then d_qk = 576, h_kv = 1)
  std::vector<int32_t> seqlens;             // [b]; empty: uniform in [0, 300]
  bool causal = false;
  float softmax_scale = 0.0f;               // 0: 1 / sqrt(d_qk)
  int64_t spare_blocks = 3;                 // unused (NaN) pages in the pool
  int64_t spare_table_columns = 2;          // unused block-table columns per row
  int64_t pad = 0;                          // extra elements after every strided dim
  uint64_t seed = 1;
};

struct DenseDecodeProblem {
  DenseDecodeConfig config;
  DenseDecodeArgs args;  // shapes, strides, scale, causal; pointers null
  std::vector<uint16_t> q;
  std::vector<uint8_t> kv;  // native elements or FP8 tokens, as bytes
  std::vector<int32_t> block_table;
  std::vector<int32_t> cache_seqlens;

  StridedView out_view() const;  // [b, s_q, h_q, d_v]
  StridedView lse_view() const;  // [b, h_q, s_q]
  HostOutputs make_outputs() const;  // NaN-poisoned
  DenseDecodeArgs host_args(HostOutputs& outputs) const;
};

DenseDecodeProblem make_dense_decode_problem(const DenseDecodeConfig& config);

// ---------------------------------------------------------------- sparse decode
struct SparseDecodeConfig {
  int64_t b = 2;
  int64_t s_q = 1;
  int64_t h_q = 16;
  int64_t topk = 64;
  int64_t page_block_size = 64;
  int64_t num_blocks = 0;                   // 0: about 1.5x the tokens indices can reach
  KVFormat kv_format = KVFormat::kFp8V32;   // or kFp8Model1
  double invalid_fraction = 0.15;           // positions holding a zoo value
  double duplicate_fraction = 0.05;         // positions repeating an earlier index
  bool with_topk_length = false;
  std::vector<int32_t> topk_length;         // [b]; empty with with_topk_length: random in [0, topk]
  // Extra cache: none when extra_topk = 0.
  int64_t extra_topk = 0;
  int64_t extra_page_block_size = 64;
  int64_t extra_num_blocks = 0;             // 0: automatic, as num_blocks
  bool with_extra_topk_length = false;
  std::vector<int32_t> extra_topk_length;   // [b]; empty: random in [0, extra_topk]
  std::vector<float> attn_sink;             // [h_q], or empty for none
  float softmax_scale = 0.0f;               // 0: 1 / sqrt(d_qk)
  int64_t pad = 0;                          // extra elements (pages: 16 * pad bytes)
  uint64_t seed = 1;
};

struct SparseDecodeProblem {
  SparseDecodeConfig config;
  SparseDecodeArgs args;  // shapes, strides, scale; pointers null
  std::vector<uint16_t> q;
  std::vector<uint8_t> kv;
  std::vector<int32_t> indices;
  std::vector<int32_t> topk_length;        // empty: absent
  std::vector<float> attn_sink;            // empty: absent
  std::vector<uint8_t> extra_kv;           // empty: no extra cache
  std::vector<int32_t> extra_indices;
  std::vector<int32_t> extra_topk_length;  // empty: absent

  StridedView out_view() const;  // [b, s_q, h_q, d_v]
  StridedView lse_view() const;  // [b, h_q, s_q]
  HostOutputs make_outputs() const;
  SparseDecodeArgs host_args(HostOutputs& outputs) const;
};

SparseDecodeProblem make_sparse_decode_problem(const SparseDecodeConfig& config);

// ---------------------------------------------------------------- sparse prefill
struct SparsePrefillConfig {
  int64_t s_q = 4;
  int64_t s_kv = 256;
  int64_t h_q = 16;
  int64_t h_kv = 1;
  int64_t d_qk = 576;
  int64_t d_v = 512;
  int64_t topk = 64;
  double invalid_fraction = 0.15;
  double duplicate_fraction = 0.05;
  bool with_topk_length = false;
  std::vector<int32_t> topk_length;  // [s_q]; empty with with_topk_length: random in [0, topk]
  std::vector<float> attn_sink;      // [h_q] or empty
  float softmax_scale = 0.0f;
  int64_t pad = 0;
  uint64_t seed = 1;
};

struct SparsePrefillProblem {
  SparsePrefillConfig config;
  SparsePrefillArgs args;
  std::vector<uint16_t> q;
  std::vector<uint16_t> kv;
  std::vector<int32_t> indices;
  std::vector<int32_t> topk_length;
  std::vector<float> attn_sink;

  StridedView out_view() const;         // [s_q, h_q, d_v]
  StridedView max_logits_view() const;  // [s_q, h_q]
  StridedView lse_view() const;         // [s_q, h_q]
  HostOutputs make_outputs() const;
  SparsePrefillArgs host_args(HostOutputs& outputs) const;
};

SparsePrefillProblem make_sparse_prefill_problem(const SparsePrefillConfig& config);

// Fills `indices[0, count)` with valid indices in [0, capacity), zoo values
// (invalid_fraction) and repeats of earlier positions (duplicate_fraction);
// shared by the sparse generators and usable by tests.
void fill_index_row(Rng& rng, int32_t* indices, int64_t count, int64_t capacity,
                    double invalid_fraction, double duplicate_fraction);

}  // namespace flashmla::test
