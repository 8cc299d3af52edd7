// plan_decode on the CPU: the same pure partition the GPU planner runs,
// written into host memory.
#include <algorithm>

#include "common/decode_schedule.h"
#include "flashmla_ref/reference.h"
#include "status_util.h"

namespace flashmla::ref {
namespace {

// Keys a sparse request attends: its used main indices plus its used extra
// indices, each counted in whole 64-index blocks (the kernel walks them in
// blocks, and the two caches never share a block).
int32_t sparse_blocks(const PlanDecodeArgs& a, int32_t i) {
  const int64_t main = a.lengths == nullptr ? a.topk : std::clamp<int64_t>(a.lengths[i], 0, a.topk);
  const int64_t extra =
      a.extra_lengths == nullptr ? a.extra_topk : std::clamp<int64_t>(a.extra_lengths[i], 0, a.extra_topk);
  return work_blocks(int32_t(main)) + work_blocks(int32_t(extra));
}

}  // namespace

Status plan_decode(const PlanDecodeArgs& a) {
  if (a.b < 0 || a.b > INT32_MAX - 1) return invalid_argument("b: expected 0..2^31-2, got %lld", (long long)a.b);
  FLASHMLA_REF_REQUIRE_PTR(a.schedule, "schedule");
  if (a.kind == DecodeKind::kDense) {
    if (a.b > 0) FLASHMLA_REF_REQUIRE_PTR(a.lengths, "lengths");
  } else if (a.kind != DecodeKind::kSparse) {
    return invalid_argument("kind: expected dense or sparse");
  }
  if (a.topk < 0 || a.extra_topk < 0) return invalid_argument("topk, extra_topk: expected >= 0");
  const int32_t num_workers = decode_num_workers(a.num_sms, a.kind, a.s_q, a.h_q, a.h_kv);
  const int32_t b = int32_t(a.b);
  const ScheduleView view = schedule_view(a.schedule, num_workers);
  if (a.kind == DecodeKind::kDense) {
    partition_decode_work(b, num_workers, piece_cost_blocks(a.kind),
                          [&](int32_t i) { return work_blocks(a.lengths[i]); }, view);
  } else {
    partition_decode_work(b, num_workers, piece_cost_blocks(a.kind), [&](int32_t i) { return sparse_blocks(a, i); },
                          view);
  }
  return ok_status();
}

}  // namespace flashmla::ref
