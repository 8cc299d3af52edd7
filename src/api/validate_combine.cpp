// validate() and workspace_size() of combine (spec sections 1, 2, 6).
// Invalid-argument rules run first, support rules last.
#include "api/check.h"
#include "flashmla/flashmla.h"

namespace flashmla {
namespace {

using namespace api;

Status check_shapes(const CombineArgs& a) {
  FLASHMLA_TRY(check_at_least("num_splits", a.num_splits, 1));
  FLASHMLA_TRY(check_fits_int32("num_splits", a.num_splits));
  FLASHMLA_TRY(check_at_least("b", a.b, 0));
  FLASHMLA_TRY(check_fits_int32("b", a.b));
  FLASHMLA_TRY(check_at_least("s_q", a.s_q, 1));
  FLASHMLA_TRY(check_fits_int32("s_q", a.s_q));
  FLASHMLA_TRY(check_at_least("h_q", a.h_q, 1));
  FLASHMLA_TRY(check_fits_int32("h_q", a.h_q));
  FLASHMLA_TRY(check_at_least("d_v", a.d_v, 1));
  return ok_status();
}

Status check_formats(const CombineArgs& a) {
  if (!is_known(a.partial_dtype)) {
    return invalid_argument("partial_dtype (of out_partial): expected float32, bfloat16 or float16, "
                            "got %s (%d)",
                            to_string(a.partial_dtype), int(a.partial_dtype));
  }
  if (!is_known(a.dtype)) {
    return invalid_argument("dtype (of out): expected bfloat16 or float16, got %s (%d)",
                            to_string(a.dtype), int(a.dtype));
  }
  return ok_status();
}

Status check_tensors(const CombineArgs& a) {
  FLASHMLA_TRY(check_tensor({"out_partial", a.out_partial, dtype_bytes(a.partial_dtype), kTmaAlignment},
                            {{"num_splits", a.num_splits, "stride_out_partial_split",
                              a.stride_out_partial_split},
                             {"b", a.b, "stride_out_partial_b", a.stride_out_partial_b},
                             {"s_q", a.s_q, "stride_out_partial_s", a.stride_out_partial_s},
                             {"h_q", a.h_q, "stride_out_partial_h", a.stride_out_partial_h},
                             {"d_v", a.d_v}}));
  FLASHMLA_TRY(check_tensor({"lse_partial", a.lse_partial, 4, kWordAlignment},
                            {{"num_splits", a.num_splits, "stride_lse_partial_split",
                              a.stride_lse_partial_split},
                             {"b", a.b, "stride_lse_partial_b", a.stride_lse_partial_b},
                             {"h_q", a.h_q, "stride_lse_partial_h", a.stride_lse_partial_h},
                             {"s_q", a.s_q}}));
  FLASHMLA_TRY(check_tensor({"attn_sink", a.attn_sink, 4, kWordAlignment, true}, {{"h_q", a.h_q}}));
  FLASHMLA_TRY(check_tensor({"out", a.out, dtype_bytes(a.dtype), kTmaAlignment},
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

Status check_supported(const CombineArgs& a) {
  if (a.d_v != 512) {
    return not_supported("d_v: expected 512 (the only d_v the kernels are built for), got %lld",
                         (long long)a.d_v);
  }
  return ok_status();
}

}  // namespace

Status validate(const CombineArgs& args) {
  FLASHMLA_TRY(check_shapes(args));
  FLASHMLA_TRY(check_formats(args));
  FLASHMLA_TRY(check_tensors(args));
  return check_supported(args);
}

// Combine reads the partials and writes out and lse directly.
int64_t workspace_size(const CombineArgs&) { return 0; }

}  // namespace flashmla
