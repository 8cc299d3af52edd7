// The decode schedule: how the KV work of a batch is cut over workers
// (persistent CTAs), and where split requests put their partial results.
//
// Pure and shared: the GPU planner (plan_decode), the CPU reference and the
// CPU tests run exactly this code.
//
// Memory layout of a schedule buffer (all int32, 16-byte aligned records):
//   ScheduleHeader                      16 bytes
//   WorkerRange[num_workers]            32 bytes each
//   split_begin[b + 1]                  request i's partial results occupy
//                                       slots [split_begin[i], split_begin[i+1]);
//                                       exactly one slot means "not split":
//                                       the worker writes out/lse directly.
//
// Work is counted in blocks of kBlockTokens keys (one page for dense decode,
// 64 indices for sparse decode), plus a per-piece cost (piece_cost_blocks) for
// loading q and writing the result of each piece of a request.
#pragma once

#include <cstdint>

#include "common/dense_decode_tiles.h"
#include "common/host_device.h"
#include "flashmla/args.h"

namespace flashmla {

constexpr int32_t kBlockTokens = 64;
// What a piece costs beyond its blocks, in blocks, measured per kind (H200,
// bench/results/NVIDIA-H200-913174e-planner-overhead.variants.log): dense
// decode ran D12 11% and D03 6% faster at 2 than at 5 (short requests are cut
// over more workers); sparse decode did not move, and at 2 equal sparse
// requests are cut again (the cascade the budget floor below removes).
constexpr int32_t kDensePieceCostBlocks = 2;
constexpr int32_t kSparsePieceCostBlocks = 5;
FLASHMLA_HOST_DEVICE constexpr int32_t piece_cost_blocks(DecodeKind kind) {
  return kind == DecodeKind::kSparse ? kSparsePieceCostBlocks : kDensePieceCostBlocks;
}
// Query heads one sparse decode CTA computes (one wgmma M).
constexpr int64_t kSparseHeadsPerCta = 64;

struct ScheduleHeader {
  int32_t num_workers;
  int32_t b;
  int32_t num_partials;  // split_begin[b]
  int32_t reserved;
};

// Worker w handles the keys from (begin_req, begin_block) up to, not
// including, (end_req, end_block), in (request, block) order: the rest of
// request begin_req from begin_block, the requests in between whole, and
// blocks [0, end_block) of end_req. begin == end means no work. A worker that
// starts at block 0 of a zero-block request owns that request's empty result.
struct WorkerRange {
  int32_t begin_req;
  int32_t begin_block;
  int32_t end_req;
  int32_t end_block;
  // Partial slot of the worker's first piece when that request is split
  // (split_begin[begin_req] + the number of earlier workers on it).
  int32_t first_partial;
  int32_t reserved[3];
};
static_assert(sizeof(ScheduleHeader) == 16, "schedule header is 16 bytes");
static_assert(sizeof(WorkerRange) == 32, "worker record is 32 bytes");

FLASHMLA_HOST_DEVICE constexpr int64_t schedule_bytes(int64_t b, int64_t num_workers) {
  return int64_t(sizeof(ScheduleHeader)) + num_workers * int64_t(sizeof(WorkerRange)) +
         ((b + 1) * 4 + 15) / 16 * 16;
}

// Upper bound on partial slots: every worker can cut at most one request
// that another worker also touches, so splits add at most num_workers slots.
FLASHMLA_HOST_DEVICE constexpr int64_t max_partials(int64_t b, int64_t num_workers) {
  return b + num_workers;
}

// How the combine (kernels/combine) lays out its warps, here so that host
// code and CPU tests can tell which layout a batch gets: rows (times heads)
// up to kCombineFewRows get 4 warps each, one per 128 dims, so that a batch
// of one long request still has hundreds of warps reading; larger batches
// get one warp per row.
constexpr int64_t kCombineFewRows = 1024;

// How many workers a schedule has. The decode kernels run one persistent CTA
// per (worker, tile of query rows, KV head), one CTA per SM: dense decode
// has m_blocks * h_kv tiles per worker (see dense_decode_tiles.h), so it
// gets num_sms / (m_blocks * h_kv) workers (at least one). Sparse decode
// runs one CTA per (worker, query token, 64 heads): num_sms / (s_q *
// ceil(h_q / 64)) workers. A worker whose range is empty exits at once. The
// value is part of the schedule, so plan and decode always agree.
//
// Example: 132 SMs, dense, h_q 128, s_q 1, h_kv 1: two 64-row tiles, 66 workers.
// Sparse, h_q 128, s_q 2: four CTAs per worker, 33 workers.
FLASHMLA_HOST_DEVICE constexpr int32_t decode_num_workers(int32_t num_sms, DecodeKind kind, int64_t s_q,
                                                         int64_t h_q, int64_t h_kv) {
  int64_t ctas_per_worker = 1;
  if (kind == DecodeKind::kDense) {
    const DenseDecodeTiles tiles = dense_decode_tiles(s_q, h_q, h_kv);
    ctas_per_worker = tiles.m_blocks > 0 ? int64_t(tiles.m_blocks) * h_kv : 1;
  } else if (s_q > 0 && h_q > 0) {
    ctas_per_worker = s_q * ((h_q + kSparseHeadsPerCta - 1) / kSparseHeadsPerCta);
  }
  const int64_t workers = num_sms / ctas_per_worker;
  return workers > 0 ? int32_t(workers) : 1;
}

struct ScheduleView {
  ScheduleHeader* header;
  WorkerRange* workers;
  int32_t* split_begin;
};

FLASHMLA_HOST_DEVICE inline ScheduleView schedule_view(void* data, int32_t num_workers) {
  auto* bytes = static_cast<unsigned char*>(data);
  ScheduleView view;
  view.header = reinterpret_cast<ScheduleHeader*>(bytes);
  view.workers = reinterpret_cast<WorkerRange*>(bytes + sizeof(ScheduleHeader));
  view.split_begin =
      reinterpret_cast<int32_t*>(bytes + sizeof(ScheduleHeader) + num_workers * sizeof(WorkerRange));
  return view;
}

// Blocks of work for one request of `length` keys. Negative lengths (garbage
// in a device tensor) count as zero: they are masked, never trusted.
FLASHMLA_HOST_DEVICE inline int32_t work_blocks(int32_t length) {
  return length <= 0 ? 0 : length / kBlockTokens + (length % kBlockTokens != 0);
}

// Cuts the batch over num_workers so that every worker gets nearly the same
// cost (blocks + piece_cost per piece). `blocks(i)` gives request i's work in
// blocks.
//
// Greedy walk: worker w gets a budget of ceil((remaining cost + the overhead
// of the cuts still to come) / workers left), but never less than the first
// worker's (the batch's mean with those overheads); it takes whole requests
// while they fit and cuts the next one when at least kMinSplitBlocks of
// budget are left after the piece's overhead; the last worker takes
// everything left. Recomputing the budget per worker spreads what earlier
// workers could not use instead of piling it on the last one. The floor
// stops a cascade: with about as many equal requests as workers, a worker
// that takes whole requests leaves the rest to more workers than it needs,
// the recomputed budgets fall a little below one request, and every later
// request was cut (S01, 64 requests of 32 blocks on 33 workers: 10 cut;
// S02-S03, S05-S06: 20). With the floor none is, at the same makespan; the
// dense suite's makespans do not change (`flashmla-bench --plan`).
// A zero-block request costs nothing but is still owned by one worker, which
// writes its empty result (out = 0, lse = -inf).
//
// Worked example: blocks = {10, 2, 0, 30}, 4 workers, piece cost 5: the uncut
// cost is 42 + 3 * 5 = 57. Worker 0's budget is ceil((57 + 3 * 5) / 4) = 18:
// request 0 whole (cost 15); request 1 (cost 7) does not fit in the 3 left.
// Worker 1: ceil((42 + 2 * 5) / 3) = 18: request 1 (7), the empty request 2
// (0), then 11 - 5 = 6 blocks of request 3. Worker 2: ceil((29 + 5) / 2) =
// 17, raised to the floor 18: 13 more blocks; worker 3 takes the last 11
// (costs 15, 18, 18, 16). Request 3 is cut in three pieces, so split_begin =
// {0, 1, 2, 3, 6}.
constexpr int32_t kMinSplitBlocks = 2;

template <typename BlocksFn>
FLASHMLA_HOST_DEVICE void partition_decode_work(int32_t b, int32_t num_workers, int32_t piece_cost,
                                                BlocksFn blocks, ScheduleView out) {
  int64_t remaining_cost = 0;
  for (int32_t i = 0; i < b; ++i) {
    const int32_t n = blocks(i);
    remaining_cost += n > 0 ? n + piece_cost : 0;
  }
  for (int32_t i = 0; i <= b; ++i) out.split_begin[i] = 0;
  const int64_t floor_budget = (remaining_cost + piece_cost * (int64_t(num_workers) - 1) + num_workers - 1) /
                               (num_workers > 0 ? num_workers : 1);

  // Pass 1: assign ranges; count the pieces of request i in split_begin[i + 1]
  // and keep each worker's piece index within its first request.
  int32_t req = 0;
  int32_t block = 0;
  int32_t pieces_of_req = 0;  // pieces of `req` taken by earlier workers
  for (int32_t w = 0; w < num_workers; ++w) {
    WorkerRange& range = out.workers[w];
    range.begin_req = req;
    range.begin_block = block;
    range.first_partial = pieces_of_req;
    range.reserved[0] = range.reserved[1] = range.reserved[2] = 0;
    const bool last = (w == num_workers - 1);
    // Each of the workers after this one may cut a request and so add one
    // more piece's overhead; counting that up front keeps the tail workers
    // from inheriting it.
    const int64_t workers_left = num_workers - w;
    int64_t budget =
        (remaining_cost + piece_cost * (workers_left - 1) + workers_left - 1) / workers_left;
    if (budget < floor_budget) budget = floor_budget;
    while (req < b) {
      const int32_t rest = blocks(req) - block;
      const int64_t cost = rest > 0 ? rest + piece_cost : 0;
      if (last || cost <= budget) {  // take the whole rest of the request
        budget -= cost;
        remaining_cost -= cost;
        out.split_begin[req + 1] += 1;
        ++req;
        block = 0;
        pieces_of_req = 0;
        continue;
      }
      const int64_t take = budget - piece_cost;
      if (take >= kMinSplitBlocks) {  // cut it; the rest keeps its own overhead
        remaining_cost -= take;
        out.split_begin[req + 1] += 1;
        block += int32_t(take);
        ++pieces_of_req;
      }
      break;
    }
    range.end_req = req;
    range.end_block = block;
  }
  // Pass 2: prefix sums give each request its slots.
  for (int32_t i = 0; i < b; ++i) out.split_begin[i + 1] += out.split_begin[i];
  for (int32_t w = 0; w < num_workers; ++w) {
    WorkerRange& range = out.workers[w];
    range.first_partial = range.begin_req < b ? out.split_begin[range.begin_req] + range.first_partial : 0;
  }
  out.header->num_workers = num_workers;
  out.header->b = b;
  out.header->num_partials = out.split_begin[b];
  out.header->reserved = 0;
}

}  // namespace flashmla
