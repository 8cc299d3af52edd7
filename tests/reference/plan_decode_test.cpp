// plan_decode reference: the schedule it writes covers every block of every
// request exactly once, with the lengths rules of dense and sparse decode.
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/decode_schedule.h"
#include "flashmla_ref/reference.h"

namespace flashmla {
namespace {

// Walks the worker ranges and returns how many times each block of each
// request is covered (requests with 0 blocks count their owning worker).
std::vector<std::vector<int>> coverage(const std::vector<int32_t>& blocks, const ScheduleView& view,
                                       int32_t num_workers) {
  const int32_t b = int32_t(blocks.size());
  std::vector<std::vector<int>> covered(static_cast<size_t>(b));
  for (int32_t i = 0; i < b; ++i) covered[size_t(i)].assign(size_t(std::max(blocks[size_t(i)], 1)), 0);
  for (int32_t w = 0; w < num_workers; ++w) {
    const WorkerRange& r = view.workers[w];
    for (int32_t req = r.begin_req; req <= r.end_req && req < b; ++req) {
      const int32_t from = req == r.begin_req ? r.begin_block : 0;
      const int32_t to = req == r.end_req ? r.end_block : blocks[size_t(req)];
      if (req == r.end_req && to == 0) break;
      if (blocks[size_t(req)] == 0) {
        covered[size_t(req)][0] += 1;
        continue;
      }
      for (int32_t k = from; k < to; ++k) covered[size_t(req)][size_t(k)] += 1;
    }
  }
  return covered;
}

void expect_every_block_once(const std::vector<int32_t>& blocks, const ScheduleView& view, int32_t num_workers) {
  const auto covered = coverage(blocks, view, num_workers);
  for (size_t i = 0; i < covered.size(); ++i) {
    for (size_t k = 0; k < covered[i].size(); ++k) {
      if (blocks[i] == 0) continue;  // an empty request's owner is checked by the partition tests
      ASSERT_EQ(covered[i][k], 1) << "request " << i << " block " << k;
    }
  }
  EXPECT_EQ(view.header->num_workers, num_workers);
  EXPECT_EQ(view.header->b, int32_t(blocks.size()));
  EXPECT_EQ(view.header->num_partials, view.split_begin[blocks.size()]);
}

TEST(PlanDecode, DenseCoversEveryBlock) {
  std::mt19937 rng(5);
  for (int32_t num_sms : {1, 7, 132}) {
    std::vector<int32_t> lengths = {0, 1, 63, 64, 65, -3, 5000};
    for (int k = 0; k < 40; ++k) lengths.push_back(int32_t(rng() % 3000));
    const int32_t num_workers = decode_num_workers(num_sms, DecodeKind::kDense, 1, 16, 1);
    std::vector<unsigned char> schedule(size_t(schedule_bytes(int64_t(lengths.size()), num_workers)), 0xCD);
    PlanDecodeArgs a;
    a.kind = DecodeKind::kDense;
    a.b = int64_t(lengths.size());
    a.s_q = 1;
    a.h_q = 16;
    a.lengths = lengths.data();
    a.num_sms = num_sms;
    a.schedule = schedule.data();
    ASSERT_TRUE(ref::plan_decode(a).ok());
    std::vector<int32_t> blocks;
    for (int32_t length : lengths) blocks.push_back(work_blocks(length));
    expect_every_block_once(blocks, schedule_view(schedule.data(), num_workers), num_workers);
  }
}

TEST(PlanDecode, SparseCountsTopkLengthAndExtra) {
  // Request lengths: min(topk_length, topk) and min(extra_length, extra_topk),
  // each rounded up to 64 indices.
  const std::vector<int32_t> topk_length = {0, 1, 64, 65, 9999, -4};
  const std::vector<int32_t> extra_length = {3, 0, 128, 1, 200, 64};
  const int64_t topk = 128, extra_topk = 128;
  const std::vector<int32_t> blocks = {0 + 1, 1 + 0, 1 + 2, 2 + 1, 2 + 2, 0 + 1};
  const int32_t num_workers = decode_num_workers(5, DecodeKind::kSparse, 2, 64, 1);
  std::vector<unsigned char> schedule(size_t(schedule_bytes(6, num_workers)), 0xCD);
  PlanDecodeArgs a;
  a.kind = DecodeKind::kSparse;
  a.b = 6;
  a.s_q = 2;
  a.h_q = 64;
  a.lengths = topk_length.data();
  a.topk = topk;
  a.extra_topk = extra_topk;
  a.extra_lengths = extra_length.data();
  a.num_sms = 5;
  a.schedule = schedule.data();
  ASSERT_TRUE(ref::plan_decode(a).ok());
  const ScheduleView view = schedule_view(schedule.data(), num_workers);
  expect_every_block_once(blocks, view, num_workers);
  // The same cut the pure partition makes from those block counts.
  std::vector<unsigned char> expected(schedule.size(), 0xCD);
  partition_decode_work(6, num_workers, kSparsePieceCostBlocks, [&](int32_t i) { return blocks[size_t(i)]; },
                        schedule_view(expected.data(), num_workers));
  EXPECT_EQ(schedule, expected);
}

TEST(PlanDecode, SparseWithoutLengthsUsesTopk) {
  const int32_t num_workers = decode_num_workers(0, DecodeKind::kSparse, 1, 8, 1);  // no SM count: one worker
  EXPECT_EQ(num_workers, 1);
  std::vector<unsigned char> schedule(size_t(schedule_bytes(3, num_workers)), 0xCD);
  PlanDecodeArgs a;
  a.kind = DecodeKind::kSparse;
  a.b = 3;
  a.s_q = 1;
  a.h_q = 8;
  a.topk = 2048;
  a.num_sms = 0;
  a.schedule = schedule.data();
  ASSERT_TRUE(ref::plan_decode(a).ok());
  const ScheduleView view = schedule_view(schedule.data(), num_workers);
  EXPECT_EQ(view.workers[0].begin_req, 0);
  EXPECT_EQ(view.workers[0].end_req, 3);
  expect_every_block_once({32, 32, 32}, view, num_workers);
}

TEST(PlanDecode, RejectsMissingPointers) {
  PlanDecodeArgs a;
  a.b = 2;
  a.num_sms = 4;
  EXPECT_EQ(ref::plan_decode(a).code, StatusCode::kInvalidArgument);  // no schedule
  std::vector<unsigned char> schedule(size_t(schedule_bytes(2, 4)));
  a.schedule = schedule.data();
  EXPECT_EQ(ref::plan_decode(a).code, StatusCode::kInvalidArgument);  // dense without lengths
}

}  // namespace
}  // namespace flashmla
