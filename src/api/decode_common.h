// Rules and sizes shared by the two decode operations: the schedule a call
// is handed must be the one planned for it, and the split path's scratch.
#pragma once

#include <cstdint>

#include "flashmla/args.h"
#include "flashmla/status.h"

namespace flashmla::api {

const char* to_string(DecodeKind kind);

// What a decode call needs its schedule to have been planned for.
struct ScheduleExpectation {
  DecodeKind kind;
  int64_t b;
  int64_t s_q;
  int64_t h_q;
  int64_t h_kv;
  int64_t topk;
  int64_t extra_topk;
};

// A stale or foreign schedule would send workers to the wrong requests, so
// every field is compared ("schedule: planned for b = 4, called with b = 8"),
// and the buffer must hold schedule_bytes(b, num_workers).
Status check_decode_schedule(const DecodeSchedule& schedule, const ScheduleExpectation& call);

// The split path's workspace: fp32 partial results of max_partials(b,
// num_workers) slots, each s_q * h_q rows of d_v values, then their lse.
//   out_partial [num_slots, s_q, h_q, d_v] fp32 at byte 0
//   lse_partial [num_slots, s_q, h_q]      fp32 at lse_partial_offset (256-byte aligned)
struct DecodeWorkspaceLayout {
  int64_t num_slots = 0;
  int64_t lse_partial_offset = 0;
  int64_t bytes = 0;
};

// False when an extent is negative or a size overflows int64. b = 0 needs
// no workspace (nothing is launched).
bool decode_workspace_layout(int64_t b, int64_t s_q, int64_t h_q, int64_t d_v,
                             int32_t num_workers, DecodeWorkspaceLayout* layout);

// The layout of a validated call, or "workspace: ... overflows" when the
// shapes are too large to address.
Status check_decode_workspace_fits(int64_t b, int64_t s_q, int64_t h_q, int64_t d_v,
                                   int32_t num_workers);

}  // namespace flashmla::api
