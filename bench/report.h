// What the benchmark prints: a table for people, one JSON line per case for
// scripts (prefix "FLASHMLA_BENCH "), and, with --results, one JSON document
// holding the run's meta and every case.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "suite.h"
#include "timing.h"

namespace flashmla::bench {

constexpr const char* kJsonLinePrefix = "FLASHMLA_BENCH ";

// The machine, software and ceilings of one run; repeated on every JSON line.
struct RunMeta {
  std::string gpu = "none";
  int sm_count = 0;
  int cc_major = 0;
  int cc_minor = 0;
  int sm_clock_khz = 0;   // peak, cudaDevAttrClockRate
  int mem_clock_khz = 0;  // peak, cudaDevAttrMemoryClockRate
  int cuda_runtime = 0;   // cudaRuntimeGetVersion, e.g. 13000
  int cuda_driver = 0;    // cudaDriverGetVersion
  Ceilings ceilings;
  bool have_ceilings = false;
  std::string commit;
  std::string started;    // UTC, ISO 8601
  std::string anchors;    // what the "FlashMLA us" of each case is
};

enum class Verified { kPass, kFail, kSkipped, kNotApplicable };
const char* to_string(Verified v);

struct CaseResult {
  Case shape;
  Case verify_shape;
  // "ok", "not supported" (the kernel is not built for it yet), or "error".
  std::string status = "ok";
  std::string message;  // why not ok, or notes
  Verified verified = Verified::kSkipped;
  std::string verify_detail;

  bool timed = false;
  int64_t pools = 0;     // L
  int64_t pool_bytes = 0;
  GraphTiming timing;

  double flops = 0.0;
  double bytes = 0.0;    // 0 when not reported (prefill)
  double anchor_us = 0.0;  // FlashMLA's time on the suite case; 0 if none

  // Figures derived from the time and the ceilings (0 when not available).
  double time_us() const { return timed ? timing.per_call_us : 0.0; }
  double tflops() const;
  double gbps() const;
  double roofline_floor_us(const RunMeta& meta) const;
  double roofline_pct(const RunMeta& meta) const;
  double ratio() const;    // our time / FlashMLA's
  double speedup() const;  // FlashMLA's time / ours
};

std::string meta_json(const RunMeta& meta);
// The meta keys alone ("gpu":...,"commit":...), to inline in another object.
std::string meta_fields_json(const RunMeta& meta);
// One case; with_meta inlines the meta keys (the per-case JSON lines are
// self-contained; the results file holds the meta once).
std::string case_json(const CaseResult& r, const RunMeta& meta, bool with_meta);

// The table, with a header line naming the GPU and the ceilings.
void print_table(const std::vector<CaseResult>& results, const RunMeta& meta);
void print_json_line(const CaseResult& r, const RunMeta& meta);
// {"meta": {...}, "cases": [...]} to `path`; "" on success.
// Writes `text` to `path`, creating missing parent directories; "" on success.
std::string write_text_file(const std::string& path, const std::string& text);
std::string write_results_file(const std::string& path, const std::vector<CaseResult>& results,
                               const RunMeta& meta);

}  // namespace flashmla::bench
