// sparse_prefill on the CPU: unpaged bf16 kv, per-token index lists,
// optional topk_length and attention sink; also returns max_logits.
#include <algorithm>
#include <vector>

#include "attention_row.h"
#include "flashmla_ref/reference.h"
#include "parallel.h"
#include "status_util.h"

namespace flashmla::ref {

Status sparse_prefill(const SparsePrefillArgs& a, const Options& options) {
  if (a.s_q < 0 || a.s_kv < 0 || a.h_q < 0 || a.topk < 0) {
    return invalid_argument("s_q, s_kv, h_q, topk: expected >= 0");
  }
  if (a.h_kv < 1 || a.h_q % a.h_kv != 0) {
    return invalid_argument("h_kv: expected a divisor of h_q = %lld, got %lld", (long long)a.h_q,
                            (long long)a.h_kv);
  }
  if (a.d_v < 1 || a.d_v > a.d_qk) return invalid_argument("d_v: expected 1..d_qk, got %lld", (long long)a.d_v);
  FLASHMLA_REF_REQUIRE_PTR(a.q, "q");
  FLASHMLA_REF_REQUIRE_PTR(a.out, "out");
  FLASHMLA_REF_REQUIRE_PTR(a.max_logits, "max_logits");
  FLASHMLA_REF_REQUIRE_PTR(a.lse, "lse");
  if (a.topk > 0) {
    FLASHMLA_REF_REQUIRE_PTR(a.kv, "kv");
    FLASHMLA_REF_REQUIRE_PTR(a.indices, "indices");
  }
  if (a.s_q == 0 || a.h_q == 0) return ok_status();
  const int64_t group = a.h_q / a.h_kv;

  // One unit = one query token and KV head.
  parallel_for(a.s_q * a.h_kv, double(group * a.topk * a.d_qk), [&](int64_t unit) {
    const int64_t j = unit / a.h_kv;
    const int64_t kv_head = unit % a.h_kv;
    const int64_t length =
        a.topk_length == nullptr ? a.topk : std::clamp<int64_t>(a.topk_length[j], 0, a.topk);
    const int32_t* indices = a.indices + j * a.stride_indices_s + kv_head * a.stride_indices_h;
    std::vector<float> storage;
    std::vector<int64_t> offsets;
    for (int64_t k = 0; k < length; ++k) {
      const int64_t index = indices[k];
      if (index < 0 || index >= a.s_kv) continue;  // invalid: masked, never an address
      offsets.push_back(int64_t(storage.size()));
      const int64_t base = index * a.stride_kv_s + kv_head * a.stride_kv_h;
      for (int64_t d = 0; d < a.d_qk; ++d) storage.push_back(float(load_element(a.kv, base + d, DType::kBFloat16)));
    }
    std::vector<const float*> keys;
    for (int64_t offset : offsets) keys.push_back(storage.data() + offset);
    std::vector<double> q(size_t(a.d_qk));
    std::vector<double> out(size_t(a.d_v));
    for (int64_t h = kv_head * group; h < (kv_head + 1) * group; ++h) {
      const int64_t q_base = j * a.stride_q_s + h * a.stride_q_h;
      for (int64_t d = 0; d < a.d_qk; ++d) q[size_t(d)] = load_element(a.q, q_base + d, DType::kBFloat16);
      const float* sink = a.attn_sink != nullptr ? a.attn_sink + h : nullptr;
      const RowResult row = attend_row(q.data(), keys, a.d_qk, a.d_v, a.softmax_scale,
                                       DType::kBFloat16, sink, out.data());
      const int64_t out_base = j * a.stride_out_s + h * a.stride_out_h;
      for (int64_t d = 0; d < a.d_v; ++d) store_element(a.out, out_base + d, DType::kBFloat16, out[size_t(d)]);
      a.max_logits[j * a.stride_max_logits_s + h] = float(row.max_logit);
      a.lse[j * a.stride_lse_s + h] = lse_to_store(row.lse, options);
    }
  });
  return ok_status();
}

}  // namespace flashmla::ref
