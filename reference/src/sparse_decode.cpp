// sparse_decode on the CPU: FP8 (V32 or MODEL1) paged KV addressed by
// folded indices, optional topk_length, extra cache and attention sink.
#include <algorithm>
#include <vector>

#include "attention_row.h"
#include "flashmla_ref/fp8_format.h"
#include "flashmla_ref/numeric.h"
#include "flashmla_ref/reference.h"
#include "parallel.h"
#include "status_util.h"

namespace flashmla::ref {
namespace {

// One paged FP8 cache and the indices of one query token into it.
struct CacheView {
  KVFormat format;
  const uint8_t* kv;
  int64_t page_block_size;
  int64_t num_blocks;
  int64_t stride_block;
};

void decode_token(const CacheView& cache, int64_t index, float* key) {
  const int64_t page = index / cache.page_block_size;
  const int64_t row = index % cache.page_block_size;
  const uint8_t* page_bytes = cache.kv + page * cache.stride_block;
  uint16_t values[kV32DimQK];
  int64_t d_qk;
  if (cache.format == KVFormat::kFp8V32) {
    decode_v32_token(page_bytes + row * kV32TokenBytes, values);
    d_qk = kV32DimQK;
  } else {
    decode_model1_token(page_bytes, cache.page_block_size, row, values);
    d_qk = kModel1DimQK;
  }
  for (int64_t d = 0; d < d_qk; ++d) key[d] = bf16_to_float(values[d]);
}

// Appends the valid keys among indices[0, count): an entry is valid only
// inside [0, num_blocks * page_block_size); duplicates are kept.
void gather(const CacheView& cache, const int32_t* indices, int64_t count, int64_t d_qk,
            std::vector<float>& storage, std::vector<int64_t>& offsets) {
  const int64_t capacity = cache.num_blocks * cache.page_block_size;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t index = indices[k];
    if (index < 0 || index >= capacity) continue;
    offsets.push_back(int64_t(storage.size()));
    storage.resize(storage.size() + size_t(d_qk));
    decode_token(cache, index, storage.data() + offsets.back());
  }
}

Status check(const SparseDecodeArgs& a) {
  if (a.b < 0 || a.s_q < 0 || a.h_q < 0 || a.topk < 0 || a.extra_topk < 0) {
    return invalid_argument("b, s_q, h_q, topk, extra_topk: expected >= 0");
  }
  if (a.kv_format != KVFormat::kFp8V32 && a.kv_format != KVFormat::kFp8Model1) {
    return invalid_argument("kv_format: expected fp8_v32 or fp8_model1, got %s", name_of(a.kv_format));
  }
  if (a.d_qk != kv_format_d_qk(a.kv_format)) {
    return invalid_argument("d_qk: expected %lld for %s, got %lld", (long long)kv_format_d_qk(a.kv_format),
                            name_of(a.kv_format), (long long)a.d_qk);
  }
  if (a.d_v < 1 || a.d_v > a.d_qk) return invalid_argument("d_v: expected 1..d_qk, got %lld", (long long)a.d_v);
  if (a.page_block_size < 1) return invalid_argument("page_block_size: expected >= 1");
  FLASHMLA_REF_REQUIRE_PTR(a.q, "q");
  FLASHMLA_REF_REQUIRE_PTR(a.out, "out");
  FLASHMLA_REF_REQUIRE_PTR(a.lse, "lse");
  if (a.topk > 0) {
    FLASHMLA_REF_REQUIRE_PTR(a.kv, "kv");
    FLASHMLA_REF_REQUIRE_PTR(a.indices, "indices");
  }
  if (a.extra_kv != nullptr && a.extra_topk > 0) {
    FLASHMLA_REF_REQUIRE_PTR(a.extra_indices, "extra_indices");
    if (a.extra_page_block_size < 1) return invalid_argument("extra_page_block_size: expected >= 1");
  }
  return ok_status();
}

// Positions of a request that are in use: topk_length[i] clamped to
// [0, topk] (a device value, never trusted), or all of them.
int64_t used_length(const int32_t* lengths, int64_t i, int64_t topk) {
  return lengths == nullptr ? topk : std::clamp<int64_t>(lengths[i], 0, topk);
}

}  // namespace

Status sparse_decode(const SparseDecodeArgs& a, const Options& options) {
  if (Status status = check(a); !status.ok()) return status;
  if (a.b == 0 || a.s_q == 0 || a.h_q == 0) return ok_status();
  const CacheView main_cache{a.kv_format, static_cast<const uint8_t*>(a.kv), a.page_block_size,
                             a.num_blocks, a.stride_kv_block};
  const bool has_extra = a.extra_kv != nullptr && a.extra_topk > 0;
  const CacheView extra_cache{a.kv_format, static_cast<const uint8_t*>(a.extra_kv),
                              a.extra_page_block_size, a.extra_num_blocks, a.stride_extra_kv_block};

  // One unit = one query token: its key set is shared by all h_q heads.
  parallel_for(a.b * a.s_q, double(a.h_q * (a.topk + a.extra_topk) * a.d_qk), [&](int64_t unit) {
    const int64_t i = unit / a.s_q;
    const int64_t j = unit % a.s_q;
    std::vector<float> storage;
    std::vector<int64_t> offsets;
    if (a.topk > 0) {
      gather(main_cache, a.indices + i * a.stride_indices_b + j * a.stride_indices_s,
             used_length(a.topk_length, i, a.topk), a.d_qk, storage, offsets);
    }
    if (has_extra) {
      gather(extra_cache,
             a.extra_indices + i * a.stride_extra_indices_b + j * a.stride_extra_indices_s,
             used_length(a.extra_topk_length, i, a.extra_topk), a.d_qk, storage, offsets);
    }
    std::vector<const float*> keys;
    for (int64_t offset : offsets) keys.push_back(storage.data() + offset);
    std::vector<double> q(size_t(a.d_qk));
    std::vector<double> out(size_t(a.d_v));
    for (int64_t h = 0; h < a.h_q; ++h) {
      const int64_t q_base = i * a.stride_q_b + j * a.stride_q_s + h * a.stride_q_h;
      for (int64_t d = 0; d < a.d_qk; ++d) q[size_t(d)] = load_element(a.q, q_base + d, DType::kBFloat16);
      const float* sink = a.attn_sink != nullptr ? a.attn_sink + h : nullptr;
      const RowResult row = attend_row(q.data(), keys, a.d_qk, a.d_v, a.softmax_scale,
                                       DType::kBFloat16, sink, out.data());
      const int64_t out_base = i * a.stride_out_b + j * a.stride_out_s + h * a.stride_out_h;
      for (int64_t d = 0; d < a.d_v; ++d) store_element(a.out, out_base + d, DType::kBFloat16, out[size_t(d)]);
      a.lse[i * a.stride_lse_b + h * a.stride_lse_h + j] = lse_to_store(row.lse, options);
    }
  });
  return ok_status();
}

}  // namespace flashmla::ref
