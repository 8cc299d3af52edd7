// dense_decode on the CPU: paged KV (native bf16/fp16, or FP8 V32 bytes),
// GQA head groups, bottom-right causal masking when s_q > 1.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attention_row.h"
#include "flashmla_ref/fp8_format.h"
#include "flashmla_ref/numeric.h"
#include "flashmla_ref/reference.h"
#include "parallel.h"
#include "status_util.h"

namespace flashmla::ref {
namespace {

Status check(const DenseDecodeArgs& a) {
  if (a.b < 0 || a.s_q < 0 || a.h_q < 0) {
    return invalid_argument("b, s_q, h_q: expected >= 0, got %lld, %lld, %lld", (long long)a.b,
                            (long long)a.s_q, (long long)a.h_q);
  }
  if (a.dtype != DType::kBFloat16 && a.dtype != DType::kFloat16) {
    return invalid_argument("dtype: expected bfloat16 or float16, got %s", name_of(a.dtype));
  }
  if (a.h_kv < 1 || a.h_q % a.h_kv != 0) {
    return invalid_argument("h_kv: expected a divisor of h_q = %lld, got %lld", (long long)a.h_q,
                            (long long)a.h_kv);
  }
  if (a.d_v < 1 || a.d_v > a.d_qk) {
    return invalid_argument("d_v: expected 1..d_qk = %lld, got %lld", (long long)a.d_qk,
                            (long long)a.d_v);
  }
  if (a.page_block_size < 1) {
    return invalid_argument("page_block_size: expected >= 1, got %lld", (long long)a.page_block_size);
  }
  if (a.kv_format == KVFormat::kFp8V32) {
    if (a.d_qk != kV32DimQK || a.h_kv != 1) {
      return invalid_argument("kv_format fp8_v32: expected d_qk = 576 and h_kv = 1, got %lld and %lld",
                              (long long)a.d_qk, (long long)a.h_kv);
    }
  } else if (a.kv_format != KVFormat::kNative) {
    return invalid_argument("kv_format: expected native or fp8_v32, got %s", name_of(a.kv_format));
  }
  FLASHMLA_REF_REQUIRE_PTR(a.q, "q");
  FLASHMLA_REF_REQUIRE_PTR(a.kv, "kv");
  FLASHMLA_REF_REQUIRE_PTR(a.block_table, "block_table");
  FLASHMLA_REF_REQUIRE_PTR(a.cache_seqlens, "cache_seqlens");
  FLASHMLA_REF_REQUIRE_PTR(a.out, "out");
  FLASHMLA_REF_REQUIRE_PTR(a.lse, "lse");
  return ok_status();
}

// Decodes token `row` of page `page`, KV head `kv_head`, into d_qk floats.
void load_key(const DenseDecodeArgs& a, int64_t page, int64_t row, int64_t kv_head, float* key) {
  if (a.kv_format == KVFormat::kFp8V32) {
    const auto* bytes = static_cast<const uint8_t*>(a.kv) + page * a.stride_kv_block + row * a.stride_kv_row;
    uint16_t values[kV32DimQK];
    decode_v32_token(bytes, values);
    for (int64_t d = 0; d < kV32DimQK; ++d) key[d] = bf16_to_float(values[d]);
    return;
  }
  const int64_t base = page * a.stride_kv_block + row * a.stride_kv_row + kv_head * a.stride_kv_h;
  for (int64_t d = 0; d < a.d_qk; ++d) key[d] = float(load_element(a.kv, base + d, a.dtype));
}

}  // namespace

Status dense_decode(const DenseDecodeArgs& a, const Options& options) {
  if (Status status = check(a); !status.ok()) return status;
  if (a.b == 0 || a.s_q == 0 || a.h_q == 0) return ok_status();
  const int64_t group = a.h_q / a.h_kv;  // query heads per KV head
  const int64_t capacity = std::max<int64_t>(a.max_blocks_per_seq, 0) * a.page_block_size;

  // One unit = one request and one KV head: its keys are decoded once and
  // shared by every query token and head of the group.
  parallel_for(a.b * a.h_kv, double(a.s_q * group) * 4096.0 * double(a.d_qk), [&](int64_t unit) {
    const int64_t i = unit / a.h_kv;
    const int64_t kv_head = unit % a.h_kv;
    // A length is a device value: negative counts as 0, and a length past
    // the block table's width is cut to it (never read past the row).
    const int64_t length = std::clamp<int64_t>(a.cache_seqlens[i], 0, capacity);
    std::vector<float> storage(size_t(length * a.d_qk));
    std::vector<const float*> key_of(size_t(length), nullptr);  // null: page id out of range
    for (int64_t t = 0; t < length; ++t) {
      const int64_t page = a.block_table[i * a.stride_block_table_b + t / a.page_block_size];
      if (page < 0 || page >= a.num_blocks) continue;
      float* key = storage.data() + t * a.d_qk;
      load_key(a, page, t % a.page_block_size, kv_head, key);
      key_of[size_t(t)] = key;
    }
    std::vector<double> q(size_t(a.d_qk));
    std::vector<double> out(size_t(a.d_v));
    std::vector<const float*> keys;
    for (int64_t j = 0; j < a.s_q; ++j) {
      // Bottom-right causal: token j sees keys [0, length - (s_q - 1 - j)).
      int64_t visible = length;
      if (a.causal && a.s_q > 1) visible = std::max<int64_t>(length - (a.s_q - 1 - j), 0);
      keys.clear();
      for (int64_t t = 0; t < visible; ++t) {
        if (key_of[size_t(t)] != nullptr) keys.push_back(key_of[size_t(t)]);
      }
      for (int64_t h = kv_head * group; h < (kv_head + 1) * group; ++h) {
        const int64_t q_base = i * a.stride_q_b + j * a.stride_q_s + h * a.stride_q_h;
        for (int64_t d = 0; d < a.d_qk; ++d) q[size_t(d)] = load_element(a.q, q_base + d, a.dtype);
        const RowResult row = attend_row(q.data(), keys, a.d_qk, a.d_v, a.softmax_scale, a.dtype,
                                         nullptr, out.data());
        const int64_t out_base = i * a.stride_out_b + j * a.stride_out_s + h * a.stride_out_h;
        for (int64_t d = 0; d < a.d_v; ++d) store_element(a.out, out_base + d, a.dtype, out[size_t(d)]);
        a.lse[i * a.stride_lse_b + h * a.stride_lse_h + j] = lse_to_store(row.lse, options);
      }
    }
  });
  return ok_status();
}

}  // namespace flashmla::ref
