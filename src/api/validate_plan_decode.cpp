// validate(), workspace_size() and describe_schedule() of plan_decode.
// Invalid-argument rules run first, support rules last; the support limits
// are the decode kernels', so a plan is refused exactly when the decode
// call it serves would be.
#include "api/check.h"
#include "kernels/plan_decode/launch.h"
#include "api/decode_common.h"
#include "common/decode_schedule.h"
#include "flashmla/flashmla.h"

namespace flashmla {
namespace {

using namespace api;

constexpr int64_t kMaxSparseHeads = 128;
constexpr int64_t kTopkGranule = 64;

Status check_shapes(const PlanDecodeArgs& a) {
  if (a.kind != DecodeKind::kDense && a.kind != DecodeKind::kSparse) {
    return invalid_argument("kind: expected dense or sparse, got %d", int(a.kind));
  }
  FLASHMLA_TRY(check_at_least("b", a.b, 0));
  FLASHMLA_TRY(check_fits_int32("b", a.b));
  FLASHMLA_TRY(check_at_least("s_q", a.s_q, 1));
  FLASHMLA_TRY(check_at_least("h_q", a.h_q, 1));
  FLASHMLA_TRY(check_fits_int32("h_q", a.h_q));
  FLASHMLA_TRY(check_at_least("h_kv", a.h_kv, 1));
  FLASHMLA_TRY(check_at_least("num_sms", a.num_sms, 1));
  return ok_status();
}

// Dense plans count pages of cache_seqlens; sparse plans count indices.
Status check_kind_fields(const PlanDecodeArgs& a) {
  if (a.kind == DecodeKind::kDense) {
    FLASHMLA_TRY(check_multiple_of("h_q", a.h_q, "h_kv", a.h_kv));
    if (a.topk != 0) {
      return invalid_argument("topk: expected 0 for a dense plan, got %lld", (long long)a.topk);
    }
    if (a.extra_topk != 0) {
      return invalid_argument("extra_topk: expected 0 for a dense plan, got %lld",
                              (long long)a.extra_topk);
    }
    if (a.extra_lengths != nullptr) {
      return invalid_argument("extra_lengths: expected nullptr for a dense plan, got %#llx",
                              (unsigned long long)reinterpret_cast<uintptr_t>(a.extra_lengths));
    }
    return ok_status();
  }
  if (a.h_kv != 1) {
    return invalid_argument("h_kv: expected 1 for a sparse plan, got %lld", (long long)a.h_kv);
  }
  FLASHMLA_TRY(check_at_least("topk", a.topk, 1));
  FLASHMLA_TRY(check_fits_int32("topk", a.topk));
  FLASHMLA_TRY(check_at_least("extra_topk", a.extra_topk, 0));
  FLASHMLA_TRY(check_fits_int32("extra_topk", a.extra_topk));
  if (a.extra_topk == 0 && a.extra_lengths != nullptr) {
    return invalid_argument("extra_lengths: expected nullptr when extra_topk = 0, got %#llx",
                            (unsigned long long)reinterpret_cast<uintptr_t>(a.extra_lengths));
  }
  return ok_status();
}

Status check_tensors(const PlanDecodeArgs& a) {
  // Dense lengths are cache_seqlens (required); sparse ones are topk_length,
  // absent when every request uses all topk indices.
  const bool lengths_optional = a.kind == DecodeKind::kSparse;
  FLASHMLA_TRY(check_tensor({"lengths", a.lengths, 4, kWordAlignment, lengths_optional},
                            {{"b", a.b}}));
  FLASHMLA_TRY(check_tensor({"extra_lengths", a.extra_lengths, 4, kWordAlignment, true},
                            {{"b", a.b}}));
  // With b = 0 nothing is planned, so the schedule buffer may be absent.
  if (a.b == 0) return ok_status();
  return check_tensor({"schedule", a.schedule, 1, kTmaAlignment},
                      {{"schedule bytes", workspace_size(a)}});
}

Status check_supported(const PlanDecodeArgs& a) {
  FLASHMLA_TRY(check_supported_at_most("s_q", a.s_q, 128, "the decode kernels' limit"));
  FLASHMLA_TRY(check_supported_at_most("b", a.b, kernels::kPlanMaxBatch,
                                       "the planner's shared-memory staging limit"));
  if (a.kind == DecodeKind::kSparse) {
    FLASHMLA_TRY(check_supported_at_most("h_q", a.h_q, kMaxSparseHeads, "the sparse kernels' limit"));
    FLASHMLA_TRY(check_supported_multiple("topk", a.topk, kTopkGranule, "the kernels' index tile"));
    FLASHMLA_TRY(check_supported_multiple("extra_topk", a.extra_topk, kTopkGranule,
                                          "the kernels' index tile"));
  }
  return ok_status();
}

}  // namespace

Status validate(const PlanDecodeArgs& args) {
  FLASHMLA_TRY(check_shapes(args));
  FLASHMLA_TRY(check_kind_fields(args));
  FLASHMLA_TRY(check_tensors(args));
  return check_supported(args);
}

int64_t workspace_size(const PlanDecodeArgs& args) {
  if (args.b < 0 || args.b > kInt32Max) return 0;
  return schedule_bytes(args.b, decode_num_workers(args.num_sms, args.kind, args.s_q, args.h_q, args.h_kv));
}

DecodeSchedule describe_schedule(const PlanDecodeArgs& args) {
  DecodeSchedule schedule;
  schedule.data = args.schedule;
  schedule.bytes = workspace_size(args);
  schedule.kind = args.kind;
  schedule.b = args.b;
  schedule.s_q = args.s_q;
  schedule.h_q = args.h_q;
  schedule.h_kv = args.h_kv;
  schedule.topk = args.topk;
  schedule.extra_topk = args.extra_topk;
  schedule.num_workers = decode_num_workers(args.num_sms, args.kind, args.s_q, args.h_q, args.h_kv);
  return schedule;
}

}  // namespace flashmla
