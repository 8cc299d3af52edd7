#include "cpu_demo.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "json.h"
#include "run_case.h"
#include "values.h"
#include "workloads.h"

namespace flashmla::bench {

namespace {

struct DemoFigures {
  std::string status = "ok";
  double cpu_ms = 0.0;
  double checksum = 0.0;      // sum of out
  double abs_checksum = 0.0;  // sum of |out|
  double lse_min = 0.0;
  double lse_max = 0.0;
};

DemoFigures run_demo_case(const Case& c) {
  DemoFigures f;
  HostWorkload hw = make_host_workload(c);
  const auto start = std::chrono::steady_clock::now();
  const Status s = run_reference(&hw);
  const auto stop = std::chrono::steady_clock::now();
  f.cpu_ms = std::chrono::duration<double, std::milli>(stop - start).count();
  if (!s.ok()) {
    f.status = std::string(to_string(s.code)) + ": " + s.what();
    return f;
  }
  for (uint16_t bits : hw.out) {
    const double v = bf16_bits_to_float(bits);
    f.checksum += v;
    f.abs_checksum += std::fabs(v);
  }
  f.lse_min = std::numeric_limits<double>::infinity();
  f.lse_max = -std::numeric_limits<double>::infinity();
  for (float v : hw.lse) {
    f.lse_min = std::min(f.lse_min, double(v));
    f.lse_max = std::max(f.lse_max, double(v));
  }
  return f;
}

std::string demo_json(const Case& c, const DemoFigures& f, const RunMeta& meta) {
  JsonWriter w;
  w.begin_object();
  w.key("case");
  w.string(c.name);
  w.key("op");
  w.string(to_string(c.op));
  w.key("shape_text");
  w.string(shape_string(c));
  w.key("status");
  w.string(f.status == "ok" ? "cpu reference only" : "error");
  if (f.status != "ok") {
    w.key("message");
    w.string(f.status);
  }
  w.key("cpu_ms");
  w.number(f.cpu_ms);
  w.key("checksum");
  w.number(f.checksum);
  w.key("abs_checksum");
  w.number(f.abs_checksum);
  w.key("lse_min");
  w.number(f.lse_min);
  w.key("lse_max");
  w.number(f.lse_max);
  w.end_object();
  // The meta keys inline, as on the GPU path's lines.
  std::string json = w.str();
  json.insert(json.size() - 1, "," + meta_fields_json(meta));
  return json;
}

}  // namespace

int run_cpu_only(const std::string& reason, const RunMeta& meta, const std::string& results_path) {
  std::printf("No sm_90 GPU: %s.\n", reason.c_str());
  std::printf("The FlashMLA-cpp kernels need an sm_90 (H100/H200) GPU; nothing is timed here.\n");
  std::printf("Running one DeepSeek-shaped decode step through the CPU reference instead.\n\n");

  Case dense;
  dense.name = "cpu-dense";
  dense.op = Op::kDenseDecode;
  dense.b = 2;
  dense.s_q = 1;
  dense.s_k = 256;
  dense.h_q = 16;
  dense.lengths = LengthMode::kVarlen;

  Case sparse;
  sparse.name = "cpu-sparse";
  sparse.op = Op::kSparseDecode;
  sparse.b = 2;
  sparse.s_q = 1;
  sparse.s_k = 256;
  sparse.h_q = 16;
  sparse.topk = 64;

  int exit_code = 0;
  std::vector<std::string> lines;
  for (const Case& c : {dense, sparse}) {
    const DemoFigures f = run_demo_case(c);
    std::printf("%-10s %-13s %-34s ", c.name.c_str(), to_string(c.op), shape_string(c).c_str());
    if (f.status != "ok") {
      std::printf("CPU reference failed: %s\n", f.status.c_str());
      exit_code = 1;
    } else {
      std::printf("CPU %.1f ms, %.3g GFLOP, checksum %.6f (sum |out| %.4f), lse [%.4f, %.4f]\n", f.cpu_ms,
                  case_flops(c) / 1e9, f.checksum, f.abs_checksum, f.lse_min, f.lse_max);
    }
    lines.push_back(demo_json(c, f, meta));
  }
  std::printf("\n");
  for (const std::string& line : lines) std::printf("%s%s\n", kJsonLinePrefix, line.c_str());
  std::printf("\nThe kernels need an sm_90 GPU: run flashmla-bench on an H100/H200 to verify and time them.\n");

  if (!results_path.empty()) {
    std::string doc = "{\"meta\":" + meta_json(meta) + ",\"cases\":[],\"cpu_reference\":[";
    for (size_t i = 0; i < lines.size(); ++i) doc += (i ? "," : "") + lines[i];
    doc += "]}\n";
    const std::string error = write_text_file(results_path, doc);
    if (!error.empty()) {
      std::fprintf(stderr, "flashmla-bench: %s\n", error.c_str());
      exit_code = 1;
    }
  }
  return exit_code;
}

}  // namespace flashmla::bench
