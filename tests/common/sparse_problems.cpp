// Sparse decode and sparse prefill inputs: index rows mixing valid keys,
// the invalid-index zoo and duplicates; every token or row that no valid
// position selects holds NaN (for FP8 caches, every byte of it).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/problems.h"
#include "flashmla_ref/fp8_format.h"

namespace flashmla::test {
namespace {

constexpr int32_t kIndexPadding = INT32_MAX;  // never-read padding of index rows

std::vector<int32_t> lengths_or_random(Rng& rng, bool wanted, const std::vector<int32_t>& given,
                                       int64_t count, int64_t topk) {
  if (!wanted) return {};
  if (!given.empty()) return given;
  std::vector<int32_t> lengths;
  for (int64_t i = 0; i < count; ++i) lengths.push_back(int32_t(rng.uniform(0, topk)));
  return lengths;
}

int64_t used_length(const std::vector<int32_t>& lengths, int64_t i, int64_t topk) {
  return lengths.empty() ? topk : std::clamp<int64_t>(lengths[size_t(i)], 0, topk);
}

// One FP8 paged cache with its index tensor [b, s_q, topk].
struct SparseCache {
  std::vector<uint8_t> kv;
  std::vector<int32_t> indices;
  int64_t num_blocks = 0;
  int64_t stride_block = 0;
  int64_t stride_indices_s = 0;
  int64_t stride_indices_b = 0;
};

SparseCache make_sparse_cache(Rng& rng, const SparseDecodeConfig& c, KVFormat format, int64_t topk,
                              int64_t page_block_size, int64_t num_blocks,
                              const std::vector<int32_t>& lengths) {
  SparseCache cache;
  const int64_t reachable = c.b * c.s_q * topk;  // index positions in total
  cache.num_blocks = num_blocks > 0 ? num_blocks : (reachable * 3 / 2 + page_block_size - 1) / page_block_size + 1;
  const int64_t capacity = cache.num_blocks * page_block_size;
  cache.stride_indices_s = topk + c.pad;
  cache.stride_indices_b = c.s_q * cache.stride_indices_s + c.pad;
  cache.indices.assign(size_t(c.b * cache.stride_indices_b), kIndexPadding);
  std::vector<char> used(size_t(capacity), 0);
  for (int64_t i = 0; i < c.b; ++i) {
    const int64_t length = used_length(lengths, i, topk);
    for (int64_t j = 0; j < c.s_q; ++j) {
      int32_t* row = cache.indices.data() + i * cache.stride_indices_b + j * cache.stride_indices_s;
      // Positions past the length get plausible indices too: the tokens
      // they alone reach stay NaN, so reading them would show.
      fill_index_row(rng, row, topk, capacity, c.invalid_fraction, c.duplicate_fraction);
      for (int64_t k = 0; k < length; ++k) {
        if (row[k] >= 0 && row[k] < capacity) used[size_t(row[k])] = 1;
      }
    }
  }
  const int64_t token_bytes = kv_format_token_bytes(format);
  cache.stride_block = page_block_size * token_bytes + 16 * c.pad;
  cache.kv.assign(size_t(cache.num_blocks * cache.stride_block), kNaNByte);
  std::vector<uint16_t> values(size_t(kv_format_d_qk(format)));
  for (int64_t index = 0; index < capacity; ++index) {
    if (!used[size_t(index)]) continue;
    for (auto& v : values) v = rng.value_bits(DType::kBFloat16);
    uint8_t* page = cache.kv.data() + (index / page_block_size) * cache.stride_block;
    const int64_t row = index % page_block_size;
    if (format == KVFormat::kFp8V32) {
      ref::encode_v32_token(values.data(), page + row * ref::kV32TokenBytes);
    } else {
      ref::encode_model1_token(values.data(), page, page_block_size, row);
      page[576 * page_block_size + 8 * row + 7] = kNaNByte;  // the pad byte is never read
    }
  }
  return cache;
}

}  // namespace

void fill_index_row(Rng& rng, int32_t* indices, int64_t count, int64_t capacity,
                    double invalid_fraction, double duplicate_fraction) {
  const std::vector<int32_t> zoo = invalid_index_zoo(capacity);
  for (int64_t k = 0; k < count; ++k) {
    const double r = rng.unit();
    if (r < invalid_fraction || capacity == 0) {
      indices[k] = zoo[size_t(rng.uniform(0, int64_t(zoo.size()) - 1))];
    } else if (r < invalid_fraction + duplicate_fraction && k > 0) {
      indices[k] = indices[rng.uniform(0, k - 1)];
    } else {
      indices[k] = int32_t(rng.uniform(0, capacity - 1));
    }
  }
}

SparseDecodeProblem make_sparse_decode_problem(const SparseDecodeConfig& c) {
  SparseDecodeProblem p;
  p.config = c;
  Rng rng(c.seed);
  SparseDecodeArgs& a = p.args;
  a.b = c.b;
  a.s_q = c.s_q;
  a.h_q = c.h_q;
  a.d_qk = kv_format_d_qk(c.kv_format);
  a.d_v = 512;
  a.topk = c.topk;
  a.page_block_size = c.page_block_size;
  a.kv_format = c.kv_format;
  a.softmax_scale = c.softmax_scale != 0.0f ? c.softmax_scale : 1.0f / std::sqrt(float(a.d_qk));

  a.stride_q_h = a.d_qk + c.pad;
  a.stride_q_s = a.h_q * a.stride_q_h + c.pad;
  a.stride_q_b = a.s_q * a.stride_q_s + c.pad;
  p.q.assign(size_t(a.b * a.stride_q_b), kNaN16);
  for (int64_t i = 0; i < a.b; ++i)
    for (int64_t j = 0; j < a.s_q; ++j)
      for (int64_t h = 0; h < a.h_q; ++h)
        for (int64_t d = 0; d < a.d_qk; ++d)
          p.q[size_t(i * a.stride_q_b + j * a.stride_q_s + h * a.stride_q_h + d)] = rng.value_bits(DType::kBFloat16);

  p.topk_length = lengths_or_random(rng, c.with_topk_length, c.topk_length, c.b, c.topk);
  SparseCache main_cache = make_sparse_cache(rng, c, c.kv_format, c.topk, c.page_block_size,
                                             c.num_blocks, p.topk_length);
  p.kv = std::move(main_cache.kv);
  p.indices = std::move(main_cache.indices);
  a.num_blocks = main_cache.num_blocks;
  a.stride_kv_block = main_cache.stride_block;
  a.stride_indices_b = main_cache.stride_indices_b;
  a.stride_indices_s = main_cache.stride_indices_s;

  if (c.extra_topk > 0) {
    p.extra_topk_length = lengths_or_random(rng, c.with_extra_topk_length, c.extra_topk_length, c.b, c.extra_topk);
    SparseCache extra = make_sparse_cache(rng, c, c.kv_format, c.extra_topk, c.extra_page_block_size,
                                          c.extra_num_blocks, p.extra_topk_length);
    p.extra_kv = std::move(extra.kv);
    p.extra_indices = std::move(extra.indices);
    a.extra_topk = c.extra_topk;
    a.extra_page_block_size = c.extra_page_block_size;
    a.extra_num_blocks = extra.num_blocks;
    a.stride_extra_kv_block = extra.stride_block;
    a.stride_extra_indices_b = extra.stride_indices_b;
    a.stride_extra_indices_s = extra.stride_indices_s;
  }
  p.attn_sink = c.attn_sink;

  a.stride_out_h = a.d_v + c.pad;
  a.stride_out_s = a.h_q * a.stride_out_h + c.pad;
  a.stride_out_b = a.s_q * a.stride_out_s + c.pad;
  a.stride_lse_h = a.s_q + c.pad;
  a.stride_lse_b = a.h_q * a.stride_lse_h + c.pad;
  return p;
}

StridedView SparseDecodeProblem::out_view() const {
  return {{args.b, args.s_q, args.h_q, args.d_v},
          {args.stride_out_b, args.stride_out_s, args.stride_out_h, 1}, DType::kBFloat16};
}

StridedView SparseDecodeProblem::lse_view() const {
  return {{args.b, args.h_q, args.s_q}, {args.stride_lse_b, args.stride_lse_h, 1}, DType::kFloat32};
}

HostOutputs SparseDecodeProblem::make_outputs() const {
  return make_poisoned_outputs(args.b * args.stride_out_b, args.b * args.stride_lse_b);
}

SparseDecodeArgs SparseDecodeProblem::host_args(HostOutputs& outputs) const {
  SparseDecodeArgs a = args;
  a.q = q.data();
  a.kv = kv.data();
  a.indices = indices.data();
  a.topk_length = topk_length.empty() ? nullptr : topk_length.data();
  a.attn_sink = attn_sink.empty() ? nullptr : attn_sink.data();
  a.extra_kv = extra_kv.empty() ? nullptr : extra_kv.data();
  a.extra_indices = extra_indices.empty() ? nullptr : extra_indices.data();
  a.extra_topk_length = extra_topk_length.empty() ? nullptr : extra_topk_length.data();
  a.out = outputs.out.data();
  a.lse = outputs.lse.data();
  return a;
}

SparsePrefillProblem make_sparse_prefill_problem(const SparsePrefillConfig& c) {
  SparsePrefillProblem p;
  p.config = c;
  Rng rng(c.seed);
  SparsePrefillArgs& a = p.args;
  a.s_q = c.s_q;
  a.s_kv = c.s_kv;
  a.h_q = c.h_q;
  a.h_kv = c.h_kv;
  a.d_qk = c.d_qk;
  a.d_v = c.d_v;
  a.topk = c.topk;
  a.softmax_scale = c.softmax_scale != 0.0f ? c.softmax_scale : 1.0f / std::sqrt(float(c.d_qk));

  a.stride_q_h = a.d_qk + c.pad;
  a.stride_q_s = a.h_q * a.stride_q_h + c.pad;
  p.q.assign(size_t(a.s_q * a.stride_q_s), kNaN16);
  for (int64_t j = 0; j < a.s_q; ++j)
    for (int64_t h = 0; h < a.h_q; ++h)
      for (int64_t d = 0; d < a.d_qk; ++d)
        p.q[size_t(j * a.stride_q_s + h * a.stride_q_h + d)] = rng.value_bits(DType::kBFloat16);

  p.topk_length = lengths_or_random(rng, c.with_topk_length, c.topk_length, c.s_q, c.topk);
  a.stride_indices_h = a.topk + c.pad;
  a.stride_indices_s = a.h_kv * a.stride_indices_h + c.pad;
  p.indices.assign(size_t(a.s_q * a.stride_indices_s), kIndexPadding);
  std::vector<char> used(size_t(a.s_kv * a.h_kv), 0);  // (row, kv head) selected by a valid position
  for (int64_t j = 0; j < a.s_q; ++j) {
    const int64_t length = used_length(p.topk_length, j, a.topk);
    for (int64_t g = 0; g < a.h_kv; ++g) {
      int32_t* row = p.indices.data() + j * a.stride_indices_s + g * a.stride_indices_h;
      fill_index_row(rng, row, a.topk, a.s_kv, c.invalid_fraction, c.duplicate_fraction);
      for (int64_t k = 0; k < length; ++k) {
        if (row[k] >= 0 && row[k] < a.s_kv) used[size_t(row[k] * a.h_kv + g)] = 1;
      }
    }
  }
  a.stride_kv_h = a.d_qk + c.pad;
  a.stride_kv_s = a.h_kv * a.stride_kv_h + c.pad;
  p.kv.assign(size_t(std::max<int64_t>(a.s_kv * a.stride_kv_s, 1)), kNaN16);
  for (int64_t t = 0; t < a.s_kv; ++t)
    for (int64_t g = 0; g < a.h_kv; ++g)
      if (used[size_t(t * a.h_kv + g)])
        for (int64_t d = 0; d < a.d_qk; ++d)
          p.kv[size_t(t * a.stride_kv_s + g * a.stride_kv_h + d)] = rng.value_bits(DType::kBFloat16);
  p.attn_sink = c.attn_sink;

  a.stride_out_h = a.d_v + c.pad;
  a.stride_out_s = a.h_q * a.stride_out_h + c.pad;
  a.stride_max_logits_s = a.h_q + c.pad;
  a.stride_lse_s = a.h_q + c.pad;
  return p;
}

StridedView SparsePrefillProblem::out_view() const {
  return {{args.s_q, args.h_q, args.d_v}, {args.stride_out_s, args.stride_out_h, 1}, DType::kBFloat16};
}

StridedView SparsePrefillProblem::max_logits_view() const {
  return {{args.s_q, args.h_q}, {args.stride_max_logits_s, 1}, DType::kFloat32};
}

StridedView SparsePrefillProblem::lse_view() const {
  return {{args.s_q, args.h_q}, {args.stride_lse_s, 1}, DType::kFloat32};
}

HostOutputs SparsePrefillProblem::make_outputs() const {
  return make_poisoned_outputs(args.s_q * args.stride_out_s, args.s_q * args.stride_lse_s,
                               args.s_q * args.stride_max_logits_s);
}

SparsePrefillArgs SparsePrefillProblem::host_args(HostOutputs& outputs) const {
  SparsePrefillArgs a = args;
  a.q = q.data();
  a.kv = kv.data();
  a.indices = indices.data();
  a.topk_length = topk_length.empty() ? nullptr : topk_length.data();
  a.attn_sink = attn_sink.empty() ? nullptr : attn_sink.data();
  a.out = outputs.out.data();
  a.max_logits = outputs.max_logits.data();
  a.lse = outputs.lse.data();
  return a;
}

}  // namespace flashmla::test
