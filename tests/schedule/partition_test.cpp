// The decode partition (src/common/decode_schedule.h) on the CPU: every block
// of every request is assigned exactly once, pieces and partial slots agree,
// work is balanced, and degenerate batches are handled.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/decode_schedule.h"

namespace flashmla {
namespace {

struct Partition {
  std::vector<unsigned char> bytes;
  ScheduleView view;
};

// Most tests use sparse decode's per-piece cost (5); the worked example of
// the header is written for it.
Partition partition(const std::vector<int32_t>& blocks, int32_t num_workers,
                    int32_t piece_cost = kSparsePieceCostBlocks) {
  Partition p;
  p.bytes.assign(schedule_bytes(int64_t(blocks.size()), num_workers), 0xCD);
  p.view = schedule_view(p.bytes.data(), num_workers);
  partition_decode_work(int32_t(blocks.size()), num_workers, piece_cost,
                        [&](int32_t i) { return blocks[size_t(i)]; }, p.view);
  return p;
}

// Walks every worker's range and checks the invariants; returns each
// worker's cost (blocks + overhead per piece).
std::vector<int64_t> check_partition(const std::vector<int32_t>& blocks, int32_t num_workers,
                                     const Partition& p, int32_t piece_cost = kSparsePieceCostBlocks) {
  const int32_t b = int32_t(blocks.size());
  std::vector<int32_t> covered(size_t(b), 0);  // blocks covered so far, in order
  std::vector<int32_t> owners(size_t(b), 0);   // workers that touched the request
  std::vector<int32_t> slots_seen;
  std::vector<int64_t> cost(size_t(num_workers), 0);
  EXPECT_EQ(p.view.header->num_workers, num_workers);
  EXPECT_EQ(p.view.header->b, b);
  int32_t prev_req = 0, prev_block = 0;
  for (int32_t w = 0; w < num_workers; ++w) {
    const WorkerRange& r = p.view.workers[w];
    // Ranges are contiguous and in order.
    EXPECT_EQ(r.begin_req, prev_req) << "worker " << w;
    EXPECT_EQ(r.begin_block, prev_block) << "worker " << w;
    EXPECT_TRUE(r.end_req > r.begin_req || (r.end_req == r.begin_req && r.end_block >= r.begin_block))
        << "worker " << w;
    int32_t piece = 0;
    const bool empty = r.begin_req == r.end_req && r.begin_block == r.end_block;
    for (int32_t req = r.begin_req; !empty && req <= r.end_req && req < b; ++req) {
      const int32_t from = (req == r.begin_req) ? r.begin_block : 0;
      const int32_t to = (req == r.end_req) ? r.end_block : blocks[size_t(req)];
      if (req == r.end_req && to == 0) break;  // end is exclusive at block 0
      EXPECT_EQ(from, covered[size_t(req)]) << "request " << req << " worker " << w;
      EXPECT_LE(to, blocks[size_t(req)]);
      EXPECT_TRUE(to > from || blocks[size_t(req)] == 0);
      covered[size_t(req)] = to;
      const int32_t slot = (piece == 0 ? r.first_partial
                                       : p.view.split_begin[req] + owners[size_t(req)]);
      EXPECT_GE(slot, p.view.split_begin[req]);
      EXPECT_LT(slot, p.view.split_begin[req + 1]);
      slots_seen.push_back(slot);
      owners[size_t(req)] += 1;
      cost[size_t(w)] += (to - from) + (to > from ? piece_cost : 0);
      ++piece;
    }
    prev_req = r.end_req;
    prev_block = r.end_block;
  }
  EXPECT_EQ(prev_req, b) << "the last worker must end past the last request";
  for (int32_t i = 0; i < b; ++i) {
    EXPECT_EQ(covered[size_t(i)], blocks[size_t(i)]) << "request " << i << " not fully covered";
    EXPECT_EQ(owners[size_t(i)], p.view.split_begin[i + 1] - p.view.split_begin[i])
        << "request " << i << ": pieces and slots disagree";
    EXPECT_GE(owners[size_t(i)], 1) << "request " << i << " has no owner";
  }
  // Every partial slot is used exactly once.
  std::sort(slots_seen.begin(), slots_seen.end());
  EXPECT_EQ(int32_t(slots_seen.size()), p.view.header->num_partials);
  for (size_t k = 0; k < slots_seen.size(); ++k) EXPECT_EQ(slots_seen[k], int32_t(k));
  EXPECT_LE(p.view.header->num_partials, max_partials(b, num_workers));
  return cost;
}

TEST(DecodePartition, WorkedExampleOfTheHeader) {
  const std::vector<int32_t> blocks = {10, 2, 0, 30};
  Partition p = partition(blocks, 4);
  check_partition(blocks, 4, p);
  const std::vector<int32_t> split_begin(p.view.split_begin, p.view.split_begin + 5);
  EXPECT_EQ(split_begin, (std::vector<int32_t>{0, 1, 2, 3, 6}));
  EXPECT_EQ(p.view.workers[1].end_req, 3);
  EXPECT_EQ(p.view.workers[0].end_req, 1);
  EXPECT_EQ(p.view.workers[0].end_block, 0);
  EXPECT_EQ(p.view.workers[1].end_block, 6);
  EXPECT_EQ(p.view.workers[2].end_block, 19);
}

TEST(DecodePartition, EmptyBatch) {
  Partition p = partition({}, 8);
  check_partition({}, 8, p);
  EXPECT_EQ(p.view.header->num_partials, 0);
  for (int w = 0; w < 8; ++w) EXPECT_EQ(p.view.workers[w].begin_req, 0);
}

TEST(DecodePartition, AllZeroLengthsCostNothingButHaveOwners) {
  const std::vector<int32_t> blocks(37, 0);
  Partition p = partition(blocks, 132);
  auto cost = check_partition(blocks, 132, p);
  EXPECT_EQ(*std::max_element(cost.begin(), cost.end()), 0);
  EXPECT_EQ(p.view.header->num_partials, 37);  // none is split
}

TEST(DecodePartition, OneLongRequestIsSpreadAtTheBestMakespan) {
  const std::vector<int32_t> blocks = {2048};  // 131072 tokens
  Partition p = partition(blocks, 132);
  auto cost = check_partition(blocks, 132, p);
  // The best possible makespan cuts it in 132 pieces: (2048 + 5 * 132) / 132 = 20.5. The budget
  // floor (21) gives 128 workers 16 blocks each and leaves 4 idle: the same makespan, 4 fewer
  // partial results to combine.
  EXPECT_LE(*std::max_element(cost.begin(), cost.end()), 21);
  EXPECT_LE(p.view.header->num_partials, 132);
  EXPECT_GE(p.view.header->num_partials, 128);
}

TEST(DecodePartition, SingleWorkerTakesEverythingUnsplit) {
  const std::vector<int32_t> blocks = {3, 0, 7, 1};
  Partition p = partition(blocks, 1);
  check_partition(blocks, 1, p);
  EXPECT_EQ(p.view.header->num_partials, 4);
}

TEST(DecodePartition, NegativeLengthsAreZeroWork) {
  EXPECT_EQ(work_blocks(-5), 0);
  EXPECT_EQ(work_blocks(0), 0);
  EXPECT_EQ(work_blocks(1), 1);
  EXPECT_EQ(work_blocks(64), 1);
  EXPECT_EQ(work_blocks(65), 2);
  EXPECT_EQ(work_blocks(INT32_MAX), (int64_t(INT32_MAX) + 63) / 64);
}

// Balance bound: no worker's cost exceeds the uncut mean (every request one
// piece) by more than one cut's overhead plus the kMinSplitBlocks a worker
// may leave unused.
TEST(DecodePartition, RandomBatchesAreCoveredAndBalanced) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 300; ++trial) {
    const int32_t b = int32_t(rng() % 300);
    const int32_t num_workers = 1 + int32_t(rng() % 140);
    std::vector<int32_t> blocks(static_cast<size_t>(b));
    for (auto& n : blocks) {
      const uint32_t kind = rng() % 10;
      n = kind == 0 ? 0 : kind == 1 ? 1 + int32_t(rng() % 2048) : 1 + int32_t(rng() % 128);
    }
    Partition p = partition(blocks, num_workers);
    auto cost = check_partition(blocks, num_workers, p);
    if (HasFailure()) {
      ADD_FAILURE() << "trial " << trial << " b=" << b << " workers=" << num_workers;
      return;
    }
    int64_t uncut_total = 0;
    for (int32_t n : blocks) uncut_total += n > 0 ? n + kSparsePieceCostBlocks : 0;
    const int64_t mean = (uncut_total + num_workers - 1) / num_workers;
    const int64_t max_cost = *std::max_element(cost.begin(), cost.end());
    EXPECT_LE(max_cost, mean + kSparsePieceCostBlocks + kMinSplitBlocks)
        << "trial " << trial << " b=" << b << " workers=" << num_workers;
  }
}

// At least as many equal requests as workers (the sparse suite's shapes):
// the recomputed budgets used to fall a little below one request after the
// first workers took theirs whole, and every later request was cut. With the
// budget floor none is, at the same makespan. (Fewer requests than workers
// are still cut: spreading them lowers the makespan.)
TEST(DecodePartition, EqualRequestsAreNotCutIntoACascade) {
  struct Shape {
    int32_t b, blocks, workers;
  };
  for (const Shape s : {Shape{64, 64, 66}, Shape{64, 32, 33}, Shape{128, 32, 33}, Shape{128, 32, 66},
                        Shape{128, 32, 132}}) {
    const std::vector<int32_t> blocks(size_t(s.b), s.blocks);
    Partition p = partition(blocks, s.workers);
    auto cost = check_partition(blocks, s.workers, p);
    EXPECT_EQ(p.view.header->num_partials, s.b) << "b " << s.b << " x " << s.blocks << " on " << s.workers;
    const int32_t per_worker = (s.b + s.workers - 1) / s.workers;
    EXPECT_EQ(*std::max_element(cost.begin(), cost.end()), per_worker * (s.blocks + kSparsePieceCostBlocks));
  }
}

// D12's shape with dense decode's piece cost (2): 32 requests of 16 blocks on
// 66 workers are each cut in two (9 + 7 blocks), a makespan of 11 blocks
// against 16 at the sparse cost (11 + 5).
TEST(DecodePartition, DenseCostCutsShortRequestsInTwo) {
  const std::vector<int32_t> blocks(32, 16);
  Partition dense = partition(blocks, 66, kDensePieceCostBlocks);
  auto cost = check_partition(blocks, 66, dense, kDensePieceCostBlocks);
  EXPECT_EQ(*std::max_element(cost.begin(), cost.end()), 11);
  EXPECT_EQ(dense.view.header->num_partials, 64);
  Partition sparse = partition(blocks, 66, kSparsePieceCostBlocks);
  cost = check_partition(blocks, 66, sparse, kSparsePieceCostBlocks);
  EXPECT_EQ(*std::max_element(cost.begin(), cost.end()), 16);
}

TEST(DecodePartition, HugeBatchFitsItsBounds) {
  const std::vector<int32_t> blocks(16384, 3);
  Partition p = partition(blocks, 132);
  check_partition(blocks, 132, p);
  EXPECT_LE(p.view.header->num_partials, 16384 + 132);
}

TEST(DecodeNumWorkers, DenseGivesEachWorkerAllItsRowTilesOnSeparateSms) {
  // 132 SMs: h_q 128 is two 64-row tiles per worker, s_q 2 four, h_q 16 one.
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kDense, 1, 128, 1), 66);
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kDense, 2, 128, 1), 33);
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kDense, 1, 16, 1), 132);
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kDense, 4, 16, 1), 132);
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kDense, 1, 16, 8), 16);  // 8 KV heads, one tile each
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kDense, 128, 128, 1), 1);  // 256 tiles > 132 SMs
  EXPECT_EQ(decode_num_workers(0, DecodeKind::kDense, 1, 128, 1), 1);
  // Sparse: one CTA per (worker, query token, 64 heads).
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kSparse, 2, 128, 1), 33);
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kSparse, 1, 16, 1), 132);
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kSparse, 2, 64, 1), 66);
  EXPECT_EQ(decode_num_workers(132, DecodeKind::kSparse, 128, 128, 1), 1);
}

TEST(DenseDecodeTiles, RowsOfAKvHeadFillTilesOfHeadsTimesTokens) {
  const DenseDecodeTiles a = dense_decode_tiles(1, 128, 1);
  EXPECT_EQ(a.group, 128);
  EXPECT_EQ(a.heads_per_tile, 64);
  EXPECT_EQ(a.tokens_per_tile, 1);
  EXPECT_EQ(a.m_blocks, 2);
  const DenseDecodeTiles b = dense_decode_tiles(4, 16, 1);
  EXPECT_EQ(b.heads_per_tile, 16);
  EXPECT_EQ(b.tokens_per_tile, 4);
  EXPECT_EQ(b.m_blocks, 1);
  const DenseDecodeTiles c = dense_decode_tiles(2, 9, 1);  // 18 rows in one tile
  EXPECT_EQ(c.tokens_per_tile, 2);
  EXPECT_EQ(c.m_blocks, 1);
  const DenseDecodeTiles d = dense_decode_tiles(8, 126, 2);  // 63 heads, one token a tile
  EXPECT_EQ(d.group, 63);
  EXPECT_EQ(d.tokens_per_tile, 1);
  EXPECT_EQ(d.m_blocks, 8);
  const DenseDecodeTiles e = dense_decode_tiles(5, 3, 1);  // 21 tokens fit, only 5 exist
  EXPECT_EQ(e.tokens_per_tile, 5);
  EXPECT_EQ(e.m_blocks, 1);
  const DenseDecodeTiles f = dense_decode_tiles(3, 126, 1);  // 2 head tiles x 3 tokens
  EXPECT_EQ(f.head_tiles, 2);
  EXPECT_EQ(f.m_blocks, 6);
}

TEST(DecodePartition, ScheduleBytesAreSixteenByteAligned) {
  for (int64_t b : {0, 1, 3, 4, 133}) {
    EXPECT_EQ(schedule_bytes(b, 132) % 16, 0);
    EXPECT_GE(schedule_bytes(b, 132), 16 + 132 * 32 + (b + 1) * 4);
  }
}

}  // namespace
}  // namespace flashmla
