#include "api/decode_common.h"

#include "api/check.h"
#include "common/decode_schedule.h"

namespace flashmla::api {
namespace {

Status check_field(const char* field, int64_t planned, int64_t called) {
  if (planned == called) return ok_status();
  return invalid_argument("schedule: planned for %s = %lld, called with %s = %lld", field,
                          (long long)planned, field, (long long)called);
}

constexpr int64_t kWorkspaceRegionAlignment = 256;

}  // namespace

const char* to_string(DecodeKind kind) {
  switch (kind) {
    case DecodeKind::kDense: return "dense";
    case DecodeKind::kSparse: return "sparse";
  }
  return "unknown decode kind";
}

Status check_decode_schedule(const DecodeSchedule& schedule, const ScheduleExpectation& call) {
  if (schedule.kind != call.kind) {
    return invalid_argument("schedule: planned for kind %s, called with kind %s",
                            to_string(schedule.kind), to_string(call.kind));
  }
  FLASHMLA_TRY(check_field("b", schedule.b, call.b));
  FLASHMLA_TRY(check_field("s_q", schedule.s_q, call.s_q));
  FLASHMLA_TRY(check_field("h_q", schedule.h_q, call.h_q));
  FLASHMLA_TRY(check_field("h_kv", schedule.h_kv, call.h_kv));
  FLASHMLA_TRY(check_field("topk", schedule.topk, call.topk));
  FLASHMLA_TRY(check_field("extra_topk", schedule.extra_topk, call.extra_topk));
  FLASHMLA_TRY(check_at_least("schedule.num_workers", schedule.num_workers, 1));
  if (schedule.data == nullptr) {
    return invalid_argument("schedule.data: expected a non-null pointer, got nullptr");
  }
  if (reinterpret_cast<uintptr_t>(schedule.data) % kTmaAlignment != 0) {
    return invalid_argument("schedule.data: expected a 16-byte aligned pointer, got %#llx",
                            (unsigned long long)reinterpret_cast<uintptr_t>(schedule.data));
  }
  // b fits int32 here (checked by the caller), so this cannot overflow.
  const int64_t needed = schedule_bytes(call.b, schedule.num_workers);
  if (schedule.bytes < needed) {
    return invalid_argument(
        "schedule.bytes: expected >= %lld (schedule_bytes(b = %lld, num_workers = %d)), got %lld",
        (long long)needed, (long long)call.b, schedule.num_workers, (long long)schedule.bytes);
  }
  return ok_status();
}

bool decode_workspace_layout(int64_t b, int64_t s_q, int64_t h_q, int64_t d_v,
                             int32_t num_workers, DecodeWorkspaceLayout* layout) {
  *layout = DecodeWorkspaceLayout{};
  if (b < 0 || s_q < 0 || h_q < 0 || d_v < 0 || num_workers < 0) return false;
  if (b == 0) return true;
  const int64_t slots = max_partials(b, num_workers);
  int64_t rows = 0;
  int64_t out_bytes = 0;
  int64_t lse_bytes = 0;
  int64_t lse_offset = 0;
  int64_t total = 0;
  if (__builtin_mul_overflow(slots, s_q, &rows) || __builtin_mul_overflow(rows, h_q, &rows) ||
      __builtin_mul_overflow(rows, d_v, &out_bytes) ||
      __builtin_mul_overflow(out_bytes, int64_t(sizeof(float)), &out_bytes) ||
      __builtin_mul_overflow(rows, int64_t(sizeof(float)), &lse_bytes) ||
      __builtin_add_overflow(out_bytes, kWorkspaceRegionAlignment - 1, &lse_offset)) {
    return false;
  }
  lse_offset = lse_offset / kWorkspaceRegionAlignment * kWorkspaceRegionAlignment;
  if (__builtin_add_overflow(lse_offset, lse_bytes, &total)) return false;
  layout->num_slots = slots;
  layout->lse_partial_offset = lse_offset;
  layout->bytes = total;
  return true;
}

Status check_decode_workspace_fits(int64_t b, int64_t s_q, int64_t h_q, int64_t d_v,
                                   int32_t num_workers) {
  DecodeWorkspaceLayout layout;
  if (decode_workspace_layout(b, s_q, h_q, d_v, num_workers, &layout)) return ok_status();
  return invalid_argument(
      "workspace: expected a size that fits in int64, got an overflow for b = %lld, s_q = %lld, "
      "h_q = %lld, d_v = %lld, num_workers = %d",
      (long long)b, (long long)s_q, (long long)h_q, (long long)d_v, num_workers);
}

}  // namespace flashmla::api
