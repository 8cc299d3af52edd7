// validate() and workspace_size() of dense_decode (spec sections 1, 4-6).
// Invalid-argument rules run first, support rules last, so a call that is
// both malformed and unsupported is reported as malformed.
#include <cstdint>

#include "api/check.h"
#include "api/decode_common.h"
#include "flashmla/flashmla.h"

namespace flashmla {
namespace {

using namespace api;

Status check_shapes(const DenseDecodeArgs& a) {
  FLASHMLA_TRY(check_at_least("b", a.b, 0));
  FLASHMLA_TRY(check_fits_int32("b", a.b));
  FLASHMLA_TRY(check_at_least("s_q", a.s_q, 1));
  FLASHMLA_TRY(check_at_least("h_q", a.h_q, 1));
  FLASHMLA_TRY(check_fits_int32("h_q", a.h_q));
  FLASHMLA_TRY(check_at_least("h_kv", a.h_kv, 1));
  FLASHMLA_TRY(check_multiple_of("h_q", a.h_q, "h_kv", a.h_kv));
  FLASHMLA_TRY(check_at_least("d_v", a.d_v, 1));
  if (a.d_qk < a.d_v) {
    return invalid_argument("d_qk: expected >= d_v = %lld (v is the first d_v dims of k), got %lld",
                            (long long)a.d_v, (long long)a.d_qk);
  }
  FLASHMLA_TRY(check_at_least("page_block_size", a.page_block_size, 1));
  FLASHMLA_TRY(check_fits_int32("page_block_size", a.page_block_size));
  FLASHMLA_TRY(check_at_least("num_blocks", a.num_blocks, 0));
  FLASHMLA_TRY(check_at_least("max_blocks_per_seq", a.max_blocks_per_seq, 0));
  FLASHMLA_TRY(check_fits_int32("max_blocks_per_seq", a.max_blocks_per_seq));
  return ok_status();
}

Status check_formats(const DenseDecodeArgs& a) {
  if (a.dtype != DType::kBFloat16 && a.dtype != DType::kFloat16) {
    return invalid_argument("dtype (of q and out): expected bfloat16 or float16, got %s",
                            to_string(a.dtype));
  }
  if (a.kv_format != KVFormat::kNative && a.kv_format != KVFormat::kFp8V32) {
    return invalid_argument("kv_format: expected native or fp8_v32, got %s",
                            to_string(a.kv_format));
  }
  if (a.kv_format == KVFormat::kFp8V32) {
    // The V32 token stores its RoPE part as bf16, so q must be bf16 too.
    if (a.dtype != DType::kBFloat16) {
      return invalid_argument("dtype (of q and out): expected bfloat16 with kv_format fp8_v32, got %s",
                              to_string(a.dtype));
    }
    const int64_t format_d_qk = kv_format_d_qk(a.kv_format);
    if (a.d_qk != format_d_qk) {
      return invalid_argument("d_qk: expected %lld with kv_format fp8_v32, got %lld",
                              (long long)format_d_qk, (long long)a.d_qk);
    }
    if (a.h_kv != 1) {
      return invalid_argument("h_kv: expected 1 with kv_format fp8_v32, got %lld",
                              (long long)a.h_kv);
    }
    // Tokens are packed back to back: the row stride is the token size.
    const int64_t token_bytes = kv_format_token_bytes(a.kv_format);
    if (a.stride_kv_row != token_bytes) {
      return invalid_argument(
          "stride_kv_row: expected %lld (fp8_v32 tokens are packed back to back), got %lld",
          (long long)token_bytes, (long long)a.stride_kv_row);
    }
  }
  return ok_status();
}

Status check_kv(const DenseDecodeArgs& a) {
  if (a.kv_format == KVFormat::kNative) {
    return check_tensor({"kv", a.kv, dtype_bytes(a.dtype), kTmaAlignment},
                        {{"num_blocks", a.num_blocks, "stride_kv_block", a.stride_kv_block},
                         {"page_block_size", a.page_block_size, "stride_kv_row", a.stride_kv_row},
                         {"h_kv", a.h_kv, "stride_kv_h", a.stride_kv_h},
                         {"d_qk", a.d_qk}});
  }
  // FP8: [num_blocks, page_block_size, 1, token bytes] in bytes; with one
  // KV head stride_kv_h never forms an address and is not checked.
  return check_tensor({"kv", a.kv, 1, kTmaAlignment},
                      {{"num_blocks", a.num_blocks, "stride_kv_block", a.stride_kv_block},
                       {"page_block_size", a.page_block_size, "stride_kv_row", a.stride_kv_row},
                       {"token bytes", kv_format_token_bytes(a.kv_format)}});
}

Status check_tensors(const DenseDecodeArgs& a) {
  const int64_t element_bytes = dtype_bytes(a.dtype);
  FLASHMLA_TRY(check_tensor({"q", a.q, element_bytes, kTmaAlignment},
                            {{"b", a.b, "stride_q_b", a.stride_q_b},
                             {"s_q", a.s_q, "stride_q_s", a.stride_q_s},
                             {"h_q", a.h_q, "stride_q_h", a.stride_q_h},
                             {"d_qk", a.d_qk}}));
  FLASHMLA_TRY(check_kv(a));
  FLASHMLA_TRY(check_tensor({"block_table", a.block_table, 4, kWordAlignment},
                            {{"b", a.b, "stride_block_table_b", a.stride_block_table_b},
                             {"max_blocks_per_seq", a.max_blocks_per_seq}}));
  FLASHMLA_TRY(check_tensor({"cache_seqlens", a.cache_seqlens, 4, kWordAlignment}, {{"b", a.b}}));
  FLASHMLA_TRY(check_tensor({"out", a.out, element_bytes, kTmaAlignment},
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

Status check_supported(const DenseDecodeArgs& a) {
  FLASHMLA_TRY(check_supported_at_most("s_q", a.s_q, 128, "the decode kernels' limit"));
  if (a.d_v != 512) {
    return not_supported("d_v: expected 512 (the only d_v the kernels are built for), got %lld",
                         (long long)a.d_v);
  }
  if (a.d_qk != 576 && a.d_qk != 512) {
    return not_supported("d_qk: expected 576 or 512 (the d_qk the kernels are built for), got %lld",
                         (long long)a.d_qk);
  }
  if (a.page_block_size != 64) {
    return not_supported(
        "page_block_size: expected 64 (the only page size dense_decode is built for), got %lld",
        (long long)a.page_block_size);
  }
  if (a.kv_format == KVFormat::kFp8V32) {
    // A V32 cache runs the sparse decode kernels: their head limit, and
    // positions as int32 token indices page * 64 + row (2^31 tokens is a
    // 1.4 TB cache).
    FLASHMLA_TRY(check_supported_at_most("h_q", a.h_q, 128, "the FP8 kernels' limit with kv_format fp8_v32"));
    FLASHMLA_TRY(check_supported_at_most("num_blocks", a.num_blocks, INT32_MAX / 64,
                                         "int32 token indices with kv_format fp8_v32"));
  }
  return ok_status();
}

}  // namespace

Status validate(const DenseDecodeArgs& args) {
  FLASHMLA_TRY(check_shapes(args));
  FLASHMLA_TRY(check_formats(args));
  FLASHMLA_TRY(check_softmax_scale("softmax_scale", args.softmax_scale));
  FLASHMLA_TRY(check_tensors(args));
  // With b = 0 nothing is launched and the schedule is never read.
  if (args.b > 0) {
    FLASHMLA_TRY(check_decode_schedule(
        args.schedule, {DecodeKind::kDense, args.b, args.s_q, args.h_q, args.h_kv, 0, 0}));
    FLASHMLA_TRY(check_decode_workspace_fits(args.b, args.s_q, args.h_q, args.d_v,
                                             args.schedule.num_workers));
  }
  return check_supported(args);
}

int64_t workspace_size(const DenseDecodeArgs& args) {
  DecodeWorkspaceLayout layout;
  if (!decode_workspace_layout(args.b, args.s_q, args.h_q, args.d_v, args.schedule.num_workers,
                               &layout)) {
    return 0;
  }
  return layout.bytes;
}

}  // namespace flashmla
