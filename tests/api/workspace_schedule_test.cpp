// workspace_size() and describe_schedule() for known shapes: the sizes an
// engine allocates from must be exact and stable.
#include <gtest/gtest.h>

#include "api/valid_args.h"
#include "common/decode_schedule.h"

namespace flashmla::test {
namespace {

// out_partial: 136 slots (4 requests + 132 workers) * 2 * 16 rows of 512
// floats = 8,912,896 bytes (a multiple of 256, so lse follows directly);
// lse_partial: 136 * 2 * 16 floats = 17,408 bytes.
TEST(Workspace, DenseDecodeHoldsPartialsForMaxPartialSlots) {
  const DenseDecodeArgs a = dense_decode_args();
  EXPECT_EQ(max_partials(4, kFakeSmCount), 136);
  EXPECT_EQ(workspace_size(a), 8912896 + 17408);
}

TEST(Workspace, SparseDecodeHoldsPartialsForMaxPartialSlots) {
  // s_q 2 x one 64-head tile: 132 / 2 = 66 workers; 3 requests + 66
  // workers = 69 slots of 2 * 64 rows.
  const SparseDecodeArgs a = sparse_decode_args();
  EXPECT_EQ(a.schedule.num_workers, 66);
  EXPECT_EQ(workspace_size(a), 69 * 2 * 64 * (512 * 4 + 4));
}

TEST(Workspace, LsePartialsStartOn256Bytes) {
  // d_v = 3: 1 request + 1 worker = 2 slots * 1 row * 3 floats = 24 bytes,
  // padded to 256, then 2 lse floats.
  DenseDecodeArgs a = dense_decode_args({.b = 1, .s_q = 1, .h_q = 1, .d_v = 3});
  a.schedule.num_workers = 1;
  EXPECT_EQ(workspace_size(a), 256 + 8);
}

TEST(Workspace, EmptyBatchNeedsNone) {
  EXPECT_EQ(workspace_size(dense_decode_args({.b = 0})), 0);
  EXPECT_EQ(workspace_size(sparse_decode_args({.b = 0})), 0);
}

TEST(Workspace, NonsenseShapesNeedNone) {
  DenseDecodeArgs a = dense_decode_args();
  a.h_q = -1;
  EXPECT_EQ(workspace_size(a), 0);
  a = dense_decode_args();
  a.h_q = int64_t(1) << 40;
  a.d_v = int64_t(1) << 30;  // the size overflows int64
  EXPECT_EQ(workspace_size(a), 0);
}

TEST(Workspace, PrefillAndCombineNeedNone) {
  EXPECT_EQ(workspace_size(sparse_prefill_args()), 0);
  EXPECT_EQ(workspace_size(combine_args()), 0);
}

TEST(Workspace, PlanIsTheScheduleSize) {
  // 16-byte header + 132 workers * 32 bytes + split_begin[5] padded to 32.
  EXPECT_EQ(workspace_size(plan_decode_args()), 16 + 132 * 32 + 32);
  EXPECT_EQ(workspace_size(plan_decode_args({.b = 0})), 16 + 132 * 32 + 16);
}

TEST(DescribeSchedule, CopiesTheShapeAndSizesTheBuffer) {
  const PlanDecodeArgs plan =
      plan_decode_args({.kind = DecodeKind::kSparse, .b = 7, .s_q = 3, .h_q = 64, .topk = 2048,
                        .extra_topk = 128});
  const DecodeSchedule s = describe_schedule(plan);
  EXPECT_EQ(s.data, plan.schedule);
  EXPECT_EQ(s.kind, DecodeKind::kSparse);
  EXPECT_EQ(s.b, 7);
  EXPECT_EQ(s.s_q, 3);
  EXPECT_EQ(s.h_q, 64);
  EXPECT_EQ(s.h_kv, 1);
  EXPECT_EQ(s.topk, 2048);
  EXPECT_EQ(s.extra_topk, 128);
  // One CTA per (worker, query token, 64 heads): 132 / 3 = 44 workers.
  EXPECT_EQ(s.num_workers, decode_num_workers(kFakeSmCount, DecodeKind::kSparse, 3, 64, 1));
  EXPECT_EQ(s.num_workers, 44);
  EXPECT_EQ(s.bytes, schedule_bytes(7, 44));
  EXPECT_EQ(s.bytes, workspace_size(plan));
}

TEST(DescribeSchedule, OneWorkerWhenSmCountUnknown) {
  PlanDecodeArgs plan = plan_decode_args();
  plan.num_sms = 0;
  EXPECT_EQ(describe_schedule(plan).num_workers, 1);
}

}  // namespace
}  // namespace flashmla::test
