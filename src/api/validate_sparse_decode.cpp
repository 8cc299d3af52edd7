// validate() and workspace_size() of sparse_decode (spec sections 1, 3-6).
// Invalid-argument rules run first, support rules last.
#include "api/check.h"
#include "api/decode_common.h"
#include "flashmla/flashmla.h"

namespace flashmla {
namespace {

using namespace api;

constexpr int64_t kMaxHeads = 128;
constexpr int64_t kTopkGranule = 64;

Status check_shapes(const SparseDecodeArgs& a) {
  FLASHMLA_TRY(check_at_least("b", a.b, 0));
  FLASHMLA_TRY(check_fits_int32("b", a.b));
  FLASHMLA_TRY(check_at_least("s_q", a.s_q, 1));
  FLASHMLA_TRY(check_at_least("h_q", a.h_q, 1));
  FLASHMLA_TRY(check_at_least("d_v", a.d_v, 1));
  FLASHMLA_TRY(check_at_least("topk", a.topk, 1));
  FLASHMLA_TRY(check_fits_int32("topk", a.topk));
  FLASHMLA_TRY(check_at_least("page_block_size", a.page_block_size, 1));
  FLASHMLA_TRY(check_fits_int32("page_block_size", a.page_block_size));
  FLASHMLA_TRY(check_at_least("num_blocks", a.num_blocks, 0));
  return ok_status();
}

Status check_formats(const SparseDecodeArgs& a) {
  if (a.kv_format != KVFormat::kFp8V32 && a.kv_format != KVFormat::kFp8Model1) {
    return invalid_argument("kv_format: expected fp8_v32 or fp8_model1, got %s",
                            to_string(a.kv_format));
  }
  const int64_t format_d_qk = kv_format_d_qk(a.kv_format);
  if (a.d_qk != format_d_qk) {
    return invalid_argument("d_qk: expected %lld with kv_format %s, got %lld",
                            (long long)format_d_qk, to_string(a.kv_format), (long long)a.d_qk);
  }
  if (a.d_v > a.d_qk) {
    return invalid_argument("d_v: expected <= d_qk = %lld (v is the first d_v dims of k), got %lld",
                            (long long)a.d_qk, (long long)a.d_v);
  }
  return ok_status();
}

// The extra cache is present exactly when extra_kv is given; its indices,
// lengths and topk make no sense without it.
Status check_extra_shapes(const SparseDecodeArgs& a) {
  if (a.extra_kv == nullptr) {
    if (a.extra_indices != nullptr) {
      return invalid_argument("extra_indices: expected nullptr without extra_kv, got %#llx",
                              (unsigned long long)reinterpret_cast<uintptr_t>(a.extra_indices));
    }
    if (a.extra_topk_length != nullptr) {
      return invalid_argument("extra_topk_length: expected nullptr without extra_kv, got %#llx",
                              (unsigned long long)reinterpret_cast<uintptr_t>(a.extra_topk_length));
    }
    if (a.extra_topk != 0) {
      return invalid_argument("extra_topk: expected 0 without extra_kv, got %lld",
                              (long long)a.extra_topk);
    }
    return ok_status();
  }
  FLASHMLA_TRY(check_at_least("extra_topk", a.extra_topk, 1));
  FLASHMLA_TRY(check_fits_int32("extra_topk", a.extra_topk));
  FLASHMLA_TRY(check_at_least("extra_page_block_size", a.extra_page_block_size, 1));
  FLASHMLA_TRY(check_fits_int32("extra_page_block_size", a.extra_page_block_size));
  FLASHMLA_TRY(check_at_least("extra_num_blocks", a.extra_num_blocks, 0));
  return ok_status();
}

// An FP8 page is a byte blob: only the page stride is free (spec section 3).
Status check_fp8_cache(const char* name, const void* data, int64_t num_blocks,
                       int64_t page_block_size, const char* stride_name, int64_t stride,
                       KVFormat format) {
  return check_tensor({name, data, 1, kTmaAlignment},
                      {{"num_blocks", num_blocks, stride_name, stride},
                       {"page bytes", page_block_size * kv_format_token_bytes(format)}});
}

Status check_tensors(const SparseDecodeArgs& a) {
  FLASHMLA_TRY(check_tensor({"q", a.q, 2, kTmaAlignment},
                            {{"b", a.b, "stride_q_b", a.stride_q_b},
                             {"s_q", a.s_q, "stride_q_s", a.stride_q_s},
                             {"h_q", a.h_q, "stride_q_h", a.stride_q_h},
                             {"d_qk", a.d_qk}}));
  FLASHMLA_TRY(check_fp8_cache("kv", a.kv, a.num_blocks, a.page_block_size, "stride_kv_block",
                               a.stride_kv_block, a.kv_format));
  FLASHMLA_TRY(check_tensor({"indices", a.indices, 4, kWordAlignment},
                            {{"b", a.b, "stride_indices_b", a.stride_indices_b},
                             {"s_q", a.s_q, "stride_indices_s", a.stride_indices_s},
                             {"topk", a.topk}}));
  FLASHMLA_TRY(check_tensor({"topk_length", a.topk_length, 4, kWordAlignment, true}, {{"b", a.b}}));
  FLASHMLA_TRY(check_tensor({"attn_sink", a.attn_sink, 4, kWordAlignment, true}, {{"h_q", a.h_q}}));
  if (a.extra_kv != nullptr) {
    FLASHMLA_TRY(check_fp8_cache("extra_kv", a.extra_kv, a.extra_num_blocks,
                                 a.extra_page_block_size, "stride_extra_kv_block",
                                 a.stride_extra_kv_block, a.kv_format));
    FLASHMLA_TRY(check_tensor({"extra_indices", a.extra_indices, 4, kWordAlignment},
                              {{"b", a.b, "stride_extra_indices_b", a.stride_extra_indices_b},
                               {"s_q", a.s_q, "stride_extra_indices_s", a.stride_extra_indices_s},
                               {"extra_topk", a.extra_topk}}));
    FLASHMLA_TRY(check_tensor({"extra_topk_length", a.extra_topk_length, 4, kWordAlignment, true},
                              {{"b", a.b}}));
  }
  FLASHMLA_TRY(check_tensor({"out", a.out, 2, kTmaAlignment},
                            {{"b", a.b, "stride_out_b", a.stride_out_b},
                             {"s_q", a.s_q, "stride_out_s", a.stride_out_s},
                             {"h_q", a.h_q, "stride_out_h", a.stride_out_h},
                             {"d_v", a.d_v}}));
  FLASHMLA_TRY(check_tensor({"lse", a.lse, 4, kWordAlignment},
                            {{"b", a.b, "stride_lse_b", a.stride_lse_b},
                             {"h_q", a.h_q, "stride_lse_h", a.stride_lse_h},
                             {"s_q", a.s_q}}));
  return ok_status();
}

Status check_supported(const SparseDecodeArgs& a) {
  FLASHMLA_TRY(check_supported_at_most("s_q", a.s_q, 128, "the decode kernels' limit"));
  FLASHMLA_TRY(check_supported_at_most("h_q", a.h_q, kMaxHeads, "the sparse kernels' limit"));
  if (a.d_v != 512) {
    return not_supported("d_v: expected 512 (the only d_v the kernels are built for), got %lld",
                         (long long)a.d_v);
  }
  // Callers can pad indices with -1 (an invalid entry) up to the next
  // multiple, so these are kernel limits, not contract violations.
  FLASHMLA_TRY(check_supported_multiple("topk", a.topk, kTopkGranule, "the kernels' index tile"));
  FLASHMLA_TRY(check_supported_multiple("extra_topk", a.extra_topk, kTopkGranule,
                                        "the kernels' index tile"));
  return ok_status();
}

}  // namespace

Status validate(const SparseDecodeArgs& args) {
  FLASHMLA_TRY(check_shapes(args));
  FLASHMLA_TRY(check_formats(args));
  FLASHMLA_TRY(check_extra_shapes(args));
  FLASHMLA_TRY(check_softmax_scale("softmax_scale", args.softmax_scale));
  FLASHMLA_TRY(check_tensors(args));
  // With b = 0 nothing is launched and the schedule is never read.
  if (args.b > 0) {
    FLASHMLA_TRY(check_decode_schedule(args.schedule, {DecodeKind::kSparse, args.b, args.s_q,
                                                       args.h_q, 1, args.topk, args.extra_topk}));
    FLASHMLA_TRY(check_decode_workspace_fits(args.b, args.s_q, args.h_q, args.d_v,
                                             args.schedule.num_workers));
  }
  return check_supported(args);
}

int64_t workspace_size(const SparseDecodeArgs& args) {
  DecodeWorkspaceLayout layout;
  if (!decode_workspace_layout(args.b, args.s_q, args.h_q, args.d_v, args.schedule.num_workers,
                               &layout)) {
    return 0;
  }
  return layout.bytes;
}

}  // namespace flashmla
