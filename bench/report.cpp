#include "report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "json.h"

namespace flashmla::bench {

const char* to_string(Verified v) {
  switch (v) {
    case Verified::kPass: return "pass";
    case Verified::kFail: return "FAIL";
    case Verified::kSkipped: return "skipped";
    case Verified::kNotApplicable: return "n/a";
  }
  return "unknown";
}

double CaseResult::tflops() const { return timed && time_us() > 0 ? flops / (time_us() * 1e-6) / 1e12 : 0.0; }

double CaseResult::gbps() const { return timed && time_us() > 0 ? bytes / (time_us() * 1e-6) / 1e9 : 0.0; }

double CaseResult::roofline_floor_us(const RunMeta& meta) const {
  if (!meta.have_ceilings || meta.ceilings.gemm_tflops <= 0 || meta.ceilings.copy_gbps <= 0) return 0.0;
  const double compute_us = flops / (meta.ceilings.gemm_tflops * 1e12) * 1e6;
  const double memory_us = bytes / (meta.ceilings.copy_gbps * 1e9) * 1e6;
  return std::max(compute_us, memory_us);
}

double CaseResult::roofline_pct(const RunMeta& meta) const {
  const double floor = roofline_floor_us(meta);
  return timed && time_us() > 0 && floor > 0 ? 100.0 * floor / time_us() : 0.0;
}

double CaseResult::ratio() const { return timed && anchor_us > 0 ? time_us() / anchor_us : 0.0; }

double CaseResult::speedup() const { return timed && anchor_us > 0 && time_us() > 0 ? anchor_us / time_us() : 0.0; }

namespace {

// The meta keys, written into the object that is open in `w`.
void write_meta_fields(JsonWriter& w, const RunMeta& meta) {
  w.key("gpu");
  w.string(meta.gpu);
  w.key("sm_count");
  w.integer(meta.sm_count);
  w.key("compute_capability");
  w.string(std::to_string(meta.cc_major) + "." + std::to_string(meta.cc_minor));
  w.key("sm_clock_mhz");
  w.number(meta.sm_clock_khz / 1000.0);
  w.key("mem_clock_mhz");
  w.number(meta.mem_clock_khz / 1000.0);
  w.key("cuda_runtime");
  w.integer(meta.cuda_runtime);
  w.key("cuda_driver");
  w.integer(meta.cuda_driver);
  w.key("copy_gbps");
  if (meta.have_ceilings && meta.ceilings.copy_gbps > 0) {
    w.number(meta.ceilings.copy_gbps);
  } else {
    w.null();
  }
  w.key("gemm_tflops");
  if (meta.have_ceilings && meta.ceilings.gemm_tflops > 0) {
    w.number(meta.ceilings.gemm_tflops);
  } else {
    w.null();
  }
  w.key("commit");
  w.string(meta.commit);
  w.key("started");
  w.string(meta.started);
  w.key("anchors");
  w.string(meta.anchors);
}

// A figure, or null when it does not exist (not timed, no anchor, no bytes).
void number_or_null(JsonWriter& w, double value) {
  if (value > 0) {
    w.number(value);
  } else {
    w.null();
  }
}

void write_shape(JsonWriter& w, const Case& c) {
  w.begin_object();
  if (c.op != Op::kSparsePrefill) {
    w.key("b");
    w.integer(c.b);
  }
  w.key("s_q");
  w.integer(c.s_q);
  if (c.op == Op::kSparsePrefill) {
    w.key("s_kv");
    w.integer(c.s_kv);
  } else {
    w.key("s_k");
    w.integer(c.s_k);
  }
  w.key("h_q");
  w.integer(c.h_q);
  w.key("h_kv");
  w.integer(c.h_kv);
  if (c.op != Op::kDenseDecode) {
    w.key("topk");
    w.integer(c.topk);
  }
  w.key("d_qk");
  w.integer(c.d_qk);
  w.key("d_v");
  w.integer(c.d_v);
  if (c.op == Op::kDenseDecode) {
    w.key("lengths");
    w.string(to_string(c.lengths));
    if (c.lengths == LengthMode::kSkewed) {
      w.key("skewed_first_length");
      w.integer(c.skewed_first_length);
    }
    w.key("causal");
    w.boolean(c.causal);
    w.key("kv_format");
    w.string(c.fp8_kv ? "fp8_v32" : "native");
  }
  w.end_object();
}

std::string format(const char* fmt, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, value);
  return buf;
}

}  // namespace

std::string meta_json(const RunMeta& meta) {
  JsonWriter w;
  w.begin_object();
  write_meta_fields(w, meta);
  w.end_object();
  return w.str();
}

std::string meta_fields_json(const RunMeta& meta) {
  const std::string object = meta_json(meta);
  return object.substr(1, object.size() - 2);  // without the braces
}

std::string case_json(const CaseResult& r, const RunMeta& meta, bool with_meta) {
  JsonWriter w;
  w.begin_object();
  w.key("case");
  w.string(r.shape.name);
  w.key("op");
  w.string(to_string(r.shape.op));
  w.key("shape");
  write_shape(w, r.shape);
  w.key("status");
  w.string(r.status);
  if (!r.message.empty()) {
    w.key("message");
    w.string(r.message);
  }
  w.key("time_us");
  number_or_null(w, r.time_us());
  w.key("tflops");
  number_or_null(w, r.tflops());
  w.key("gbps");
  number_or_null(w, r.gbps());
  w.key("roofline_pct");
  number_or_null(w, r.roofline_pct(meta));
  w.key("roofline_floor_us");
  number_or_null(w, r.roofline_floor_us(meta));
  w.key("anchor_us");
  number_or_null(w, r.anchor_us);
  w.key("ratio");
  number_or_null(w, r.ratio());
  w.key("speedup");
  number_or_null(w, r.speedup());
  w.key("verified");
  w.string(to_string(r.verified));
  if (!r.verify_detail.empty()) {
    w.key("verify_detail");
    w.string(r.verify_detail);
  }
  if (r.verified == Verified::kPass || r.verified == Verified::kFail) {
    w.key("verify_shape");
    write_shape(w, r.verify_shape);
  }
  w.key("flops");
  w.number(r.flops);
  w.key("bytes");
  number_or_null(w, r.bytes);
  w.key("kv_pools");
  w.integer(r.pools);
  w.key("kv_pool_bytes");
  w.integer(r.pool_bytes);
  w.key("calls_per_graph");
  w.integer(r.timing.calls);
  w.key("replay_us");
  w.begin_array();
  for (double us : r.timing.replay_us) w.number(us);
  w.end_array();
  if (with_meta) write_meta_fields(w, meta);
  w.end_object();
  return w.str();
}

void print_json_line(const CaseResult& r, const RunMeta& meta) {
  std::printf("%s%s\n", kJsonLinePrefix, case_json(r, meta, true).c_str());
  std::fflush(stdout);
}

void print_table(const std::vector<CaseResult>& results, const RunMeta& meta) {
  std::printf("\nGPU %s (%d SMs, SM clock %d MHz, memory clock %d MHz), CUDA runtime %d, driver %d, commit %s\n",
              meta.gpu.c_str(), meta.sm_count, meta.sm_clock_khz / 1000, meta.mem_clock_khz / 1000,
              meta.cuda_runtime, meta.cuda_driver, meta.commit.c_str());
  if (meta.have_ceilings) {
    const std::string note = meta.ceilings.error.empty() ? "" : "  (" + meta.ceilings.error + ")";
    std::printf("ceilings: HBM copy %.0f GB/s, bf16 GEMM %.0f TFLOPS%s\n", meta.ceilings.copy_gbps,
                meta.ceilings.gemm_tflops, note.c_str());
  }
  if (!meta.anchors.empty()) std::printf("FlashMLA us: %s\n", meta.anchors.c_str());
  std::printf("%-7s %-15s %-44s %13s %8s %8s %7s %11s %8s  %s\n", "case", "op", "shape", "us", "TFLOPS", "GB/s",
              "%roof", "FlashMLA us", "speedup", "verified");
  for (const CaseResult& r : results) {
    auto cell = [](double v, const char* fmt) { return v > 0 ? format(fmt, v) : std::string("-"); };
    std::string us = r.timed ? format("%.2f", r.time_us()) : r.status;
    std::printf("%-7s %-15s %-44s %13s %8s %8s %7s %11s %8s  %s\n", r.shape.name.c_str(), to_string(r.shape.op),
                shape_string(r.shape).c_str(), us.c_str(), cell(r.tflops(), "%.1f").c_str(),
                cell(r.gbps(), "%.0f").c_str(), cell(r.roofline_pct(meta), "%.1f").c_str(),
                cell(r.anchor_us, "%.2f").c_str(), cell(r.speedup(), "%.3fx").c_str(), to_string(r.verified));
  }
  int ok = 0;
  int not_supported = 0;
  int failed = 0;
  for (const CaseResult& r : results) {
    if (r.status == "error" || r.verified == Verified::kFail) {
      ++failed;
    } else if (r.status == "not supported") {
      ++not_supported;
    } else {
      ++ok;
    }
  }
  std::printf("%d ok, %d not supported (kernel not built), %d failed\n", ok, not_supported, failed);
  for (const CaseResult& r : results) {
    if (r.status == "error" || r.verified == Verified::kFail) {
      std::printf("  %s: %s%s%s\n", r.shape.name.c_str(), r.message.c_str(),
                  r.message.empty() || r.verify_detail.empty() ? "" : "; ", r.verify_detail.c_str());
    }
  }
  std::fflush(stdout);
}

std::string write_results_file(const std::string& path, const std::vector<CaseResult>& results,
                               const RunMeta& meta) {
  JsonWriter w;
  w.begin_object();
  w.key("meta");
  w.raw(meta_json(meta));
  w.key("cases");
  w.begin_array();
  for (const CaseResult& r : results) w.raw(case_json(r, meta, false));
  w.end_array();
  w.end_object();
  return write_text_file(path, w.str() + "\n");
}

std::string write_text_file(const std::string& path, const std::string& text) {
  // The GPU check script writes into bench/results/, which may not exist yet.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::ofstream file(path);
  if (!file) return "cannot open " + path + " for writing";
  file << text;
  file.close();
  return file ? "" : "writing " + path + " failed";
}

}  // namespace flashmla::bench
