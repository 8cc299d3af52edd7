#include "plan_report.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "common/decode_schedule.h"
#include "flashmla/flashmla.h"
#include "flashmla_ref/reference.h"

namespace flashmla::bench {

std::string summarize_plan(const Case& c, int32_t num_sms, PlanSummary* out) {
  *out = PlanSummary{};
  if (c.op == Op::kSparsePrefill) return "sparse prefill has no plan (one CTA per query token)";
  const bool sparse = c.op == Op::kSparseDecode;
  const std::vector<int32_t> lengths = request_lengths(c);  // sparse: unused (every index counts)
  PlanDecodeArgs args;
  args.kind = sparse ? DecodeKind::kSparse : DecodeKind::kDense;
  args.b = c.b;
  args.s_q = c.s_q;
  args.h_q = c.h_q;
  args.h_kv = sparse ? 1 : c.h_kv;
  args.lengths = sparse ? nullptr : lengths.data();
  args.topk = sparse ? c.topk : 0;
  args.num_sms = num_sms;
  std::vector<unsigned char> schedule(size_t(workspace_size(args)) + 16, 0);
  args.schedule = schedule.data();
  const Status status = ref::plan_decode(args);
  if (!status.ok()) return status.what();

  const int32_t b = int32_t(c.b);
  auto blocks_of = [&](int32_t req) {
    return sparse ? work_blocks(int32_t(c.topk)) : work_blocks(lengths[size_t(req)]);
  };
  const ScheduleView view = schedule_view(schedule.data(), decode_num_workers(num_sms, args.kind, c.s_q, c.h_q,
                                                                              args.h_kv));
  out->workers = view.header->num_workers;
  int64_t uncut = 0;
  for (int32_t i = 0; i < b; ++i) {
    const int32_t n = blocks_of(i);
    uncut += n > 0 ? n + piece_cost_blocks(args.kind) : 0;
    if (view.split_begin[i + 1] - view.split_begin[i] > 1) ++out->split_requests;
  }
  out->uncut_mean_cost = out->workers > 0 ? (uncut + out->workers - 1) / out->workers : 0;
  for (int32_t w = 0; w < out->workers; ++w) {
    const WorkerRange& r = view.workers[w];
    int32_t pieces = 0;
    int64_t cost = 0;
    for (int32_t req = r.begin_req; req <= r.end_req && req < b; ++req) {
      const int32_t from = req == r.begin_req ? r.begin_block : 0;
      const int32_t to = req == r.end_req ? r.end_block : blocks_of(req);
      if (to <= from) continue;
      ++pieces;
      cost += (to - from) + piece_cost_blocks(args.kind);
    }
    out->pieces += pieces;
    if (pieces > 0) ++out->busy_workers;
    out->max_worker_pieces = std::max(out->max_worker_pieces, pieces);
    out->max_worker_cost = std::max(out->max_worker_cost, cost);
  }
  return "";
}

int print_plans(const std::vector<Case>& cases, int32_t num_sms) {
  std::printf("plan_decode for %d SMs (costs in 64-token blocks, +%d per piece for dense decode, +%d for sparse)\n",
              num_sms, kDensePieceCostBlocks, kSparsePieceCostBlocks);
  std::printf("%-6s %-15s %-44s %7s %5s %7s %6s %10s %9s %9s\n", "case", "op", "shape", "workers", "busy", "pieces",
              "split", "max pieces", "max cost", "mean");
  int status = 0;
  for (const Case& c : cases) {
    PlanSummary s;
    const std::string error = summarize_plan(c, num_sms, &s);
    if (!error.empty()) {
      std::printf("%-6s %-15s %-44s %s\n", c.name.c_str(), to_string(c.op), shape_string(c).c_str(), error.c_str());
      if (c.op != Op::kSparsePrefill) status = 1;
      continue;
    }
    std::printf("%-6s %-15s %-44s %7d %5d %7lld %6d %10d %9lld %9lld\n", c.name.c_str(), to_string(c.op),
                shape_string(c).c_str(), s.workers, s.busy_workers, static_cast<long long>(s.pieces),
                s.split_requests, s.max_worker_pieces, static_cast<long long>(s.max_worker_cost),
                static_cast<long long>(s.uncut_mean_cost));
  }
  return status;
}

}  // namespace flashmla::bench
