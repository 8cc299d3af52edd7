// flashmla-bench --plan: what plan_decode makes of each decode case, without
// a GPU (the CPU planner runs the same partition as the GPU one): workers,
// pieces, split requests, the busiest worker's cost. Pieces and splits cost
// time the partition's cost model only estimates (a piece change, fp32
// partials, the combine), so this is where a planner change is judged first.
#pragma once

#include <cstdint>
#include <vector>

#include "suite.h"

namespace flashmla::bench {

// One decode case's schedule, summarized. Costs are in blocks, each piece
// counting piece_cost_blocks(kind) more (the partition's own model).
struct PlanSummary {
  int32_t workers = 0;           // in the schedule
  int32_t busy_workers = 0;      // with at least one block
  int64_t pieces = 0;            // (request, worker) pairs with blocks
  int32_t split_requests = 0;    // requests cut over several workers
  int32_t max_worker_pieces = 0;
  int64_t max_worker_cost = 0;
  int64_t uncut_mean_cost = 0;   // ceil(sum over requests of blocks + overhead / workers)
};

// "" on success (prefill cases have no plan: an error text says so).
std::string summarize_plan(const Case& c, int32_t num_sms, PlanSummary* out);

// Prints one line per case; returns 0, or 1 when a plan failed.
int print_plans(const std::vector<Case>& cases, int32_t num_sms);

}  // namespace flashmla::bench
