// validate() and workspace_size() of sparse_prefill (spec sections 1, 4-6).
// Invalid-argument rules run first, support rules last.
#include "api/check.h"
#include "flashmla/flashmla.h"

namespace flashmla {
namespace {

using namespace api;

constexpr int64_t kMaxHeads = 128;
constexpr int64_t kTopkGranule = 64;

Status check_shapes(const SparsePrefillArgs& a) {
  FLASHMLA_TRY(check_at_least("s_q", a.s_q, 0));
  FLASHMLA_TRY(check_fits_int32("s_q", a.s_q));
  FLASHMLA_TRY(check_at_least("s_kv", a.s_kv, 0));
  FLASHMLA_TRY(check_at_least("h_q", a.h_q, 1));
  FLASHMLA_TRY(check_at_least("h_kv", a.h_kv, 1));
  FLASHMLA_TRY(check_multiple_of("h_q", a.h_q, "h_kv", a.h_kv));
  FLASHMLA_TRY(check_at_least("d_v", a.d_v, 1));
  if (a.d_qk < a.d_v) {
    return invalid_argument("d_qk: expected >= d_v = %lld (v is the first d_v dims of k), got %lld",
                            (long long)a.d_v, (long long)a.d_qk);
  }
  FLASHMLA_TRY(check_at_least("topk", a.topk, 1));
  FLASHMLA_TRY(check_fits_int32("topk", a.topk));
  return ok_status();
}

Status check_tensors(const SparsePrefillArgs& a) {
  FLASHMLA_TRY(check_tensor({"q", a.q, 2, kTmaAlignment},
                            {{"s_q", a.s_q, "stride_q_s", a.stride_q_s},
                             {"h_q", a.h_q, "stride_q_h", a.stride_q_h},
                             {"d_qk", a.d_qk}}));
  FLASHMLA_TRY(check_tensor({"kv", a.kv, 2, kTmaAlignment},
                            {{"s_kv", a.s_kv, "stride_kv_s", a.stride_kv_s},
                             {"h_kv", a.h_kv, "stride_kv_h", a.stride_kv_h},
                             {"d_qk", a.d_qk}}));
  FLASHMLA_TRY(check_tensor({"indices", a.indices, 4, kWordAlignment},
                            {{"s_q", a.s_q, "stride_indices_s", a.stride_indices_s},
                             {"h_kv", a.h_kv, "stride_indices_h", a.stride_indices_h},
                             {"topk", a.topk}}));
  FLASHMLA_TRY(check_tensor({"attn_sink", a.attn_sink, 4, kWordAlignment, true}, {{"h_q", a.h_q}}));
  FLASHMLA_TRY(check_tensor({"topk_length", a.topk_length, 4, kWordAlignment, true},
                            {{"s_q", a.s_q}}));
  FLASHMLA_TRY(check_tensor({"out", a.out, 2, kTmaAlignment},
                            {{"s_q", a.s_q, "stride_out_s", a.stride_out_s},
                             {"h_q", a.h_q, "stride_out_h", a.stride_out_h},
                             {"d_v", a.d_v}}));
  FLASHMLA_TRY(check_tensor({"max_logits", a.max_logits, 4, kWordAlignment},
                            {{"s_q", a.s_q, "stride_max_logits_s", a.stride_max_logits_s},
                             {"h_q", a.h_q}}));
  FLASHMLA_TRY(check_tensor({"lse", a.lse, 4, kWordAlignment},
                            {{"s_q", a.s_q, "stride_lse_s", a.stride_lse_s}, {"h_q", a.h_q}}));
  return ok_status();
}

Status check_supported(const SparsePrefillArgs& a) {
  FLASHMLA_TRY(check_supported_at_most("h_q", a.h_q, kMaxHeads, "the sparse kernels' limit"));
  if (a.h_kv != 1) {
    return not_supported("h_kv: expected 1 (MLA: one shared latent head), got %lld",
                         (long long)a.h_kv);
  }
  if (a.d_v != 512) {
    return not_supported("d_v: expected 512 (the only d_v the kernels are built for), got %lld",
                         (long long)a.d_v);
  }
  if (a.d_qk != 576 && a.d_qk != 512) {
    return not_supported("d_qk: expected 576 or 512 (the d_qk the kernels are built for), got %lld",
                         (long long)a.d_qk);
  }
  // Callers can pad indices with -1 (an invalid entry) up to the next
  // multiple, so this is a kernel limit, not a contract violation.
  return check_supported_multiple("topk", a.topk, kTopkGranule, "the kernels' index tile");
}

}  // namespace

Status validate(const SparsePrefillArgs& args) {
  FLASHMLA_TRY(check_shapes(args));
  FLASHMLA_TRY(check_softmax_scale("softmax_scale", args.softmax_scale));
  FLASHMLA_TRY(check_tensors(args));
  return check_supported(args);
}

// Prefill needs no scratch: each query token's result is written once.
int64_t workspace_size(const SparsePrefillArgs&) { return 0; }

}  // namespace flashmla
