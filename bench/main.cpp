// flashmla-bench: verifies and times the kernels on the suite of
// bench/suite.json (or one custom shape), per shared/bench/suite.md.
//
//   flashmla-bench                      every case
//   flashmla-bench --case D01,S02       some cases
//   flashmla-bench --op dense_decode --b 64 --s_k 8192 --h_q 16
//
// Exit code: 0 when every case verified or is not supported yet, 1 on a
// verification failure or an error, 2 on bad flags.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "backend.h"
#include "cpu_demo.h"
#include "embedded_data.h"
#include "flashmla/flashmla.h"
#include "json.h"
#include "plan_report.h"
#include "report.h"
#include "run_case.h"
#include "suite.h"
#include "timing.h"

#ifndef FLASHMLA_BENCH_GIT_COMMIT
#define FLASHMLA_BENCH_GIT_COMMIT "unknown"
#endif

namespace flashmla::bench {
namespace {

constexpr const char* kUsage = R"(usage: flashmla-bench [options]

Runs the benchmark suite (bench/suite.json, compiled in): for every case,
verifies the kernel against the CPU reference on a reduced copy, then times the
full-size workload in a CUDA graph (shared/bench/suite.md). Prints a table and
one "FLASHMLA_BENCH {json}" line per case.

Selection:
  --case NAME[,NAME...]   run these suite cases (repeatable), e.g. --case D01,S02
  --op OP                 run one custom shape instead: dense_decode,
                          sparse_decode or sparse_prefill, with
    --b N --s_q N --s_k N --h_q N --h_kv N   (decode)
    --topk N                                 (sparse)
    --s_kv N                                 (prefill)
    --d_qk N                                 (576, or 512 for prefill/dense)
    --lengths fixed|varlen|skewed --causal   (dense decode)
  --fp8-kv                run the dense decode cases over an FP8 cache in the
                          V32 layout (the same values, 656 bytes a token; rows
                          "<case>-fp8"); other cases run as they are
  --list                  list the suite's cases and exit
  --plan                  print plan_decode's schedule of each decode case
                          (workers, pieces, split requests, the busiest
                          worker's cost) and exit; needs no GPU
  --sms N                 SMs to plan for with --plan (default: device 0's,
                          or 132 without a GPU)

Modes:
  --no-verify             time only
  --verify-only           verify only (no timing, no ceilings)
  --against-flashmla      also run FlashMLA's own kernels on every case, just
                          before ours and on the same inputs (verified and
                          timed alike, a "<case>/FlashMLA" row), and compare
                          with that time instead of the H100 anchors; needs a
                          build with -DFLASHMLA_PEER_SOURCE=<FlashMLA checkout>
  --flashmla-second       with --against-flashmla: time FlashMLA just after
                          ours instead of before (on a power-capped GPU the
                          second run of a long case may see lower clocks;
                          two runs in both orders show whether the order
                          moves the ratio)

Output:
  --results FILE          also write one JSON document (meta + every case)
  --commit STR            the commit recorded in the results (default: the
                          configure-time `git rev-parse --short HEAD`)
  --suite FILE            read the suite from FILE instead of the built-in copy
  --anchors FILE          read FlashMLA's anchors from FILE instead
  --help                  this text

Exit code: 0 ok (cases whose kernel is not built report "not supported"),
1 verification failure or error, 2 bad flags.
)";

struct Options {
  std::vector<std::string> case_names;
  bool custom = false;
  Op op = Op::kDenseDecode;
  std::map<std::string, std::string> shape_flags;  // --b 64 etc., applied once --op is known
  bool verify = true;
  bool time = true;
  bool list = false;
  bool plan = false;
  int64_t sms = 0;  // --plan's SM count; 0: device 0's, or 132
  bool help = false;
  std::string results;
  std::string commit = FLASHMLA_BENCH_GIT_COMMIT;
  std::string suite_path;
  std::string anchors_path;
  bool against_flashmla = false;
  bool flashmla_second = false;  // FlashMLA timed after ours, not before
  bool fp8_kv = false;           // dense decode cases over a V32 FP8 cache
};

bool parse_int(const std::string& text, int64_t* value) {
  if (text.empty()) return false;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || v < 0) return false;
  *value = v;
  return true;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ',')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

// "" on success, else what is wrong.
std::string parse_flags(int argc, char** argv, Options* o) {
  static const char* const kShapeFlags[] = {"b", "s_q", "s_k", "h_q", "h_kv", "topk", "s_kv", "d_qk", "lengths"};
  bool verify_only = false;
  bool no_verify = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h") arg = "--help";
    if (arg.rfind("--", 0) != 0) return "unexpected argument '" + arg + "'";
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto take_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    auto no_value = [&]() { return !has_value; };

    if (name == "help" && no_value()) {
      o->help = true;
    } else if (name == "list" && no_value()) {
      o->list = true;
    } else if (name == "plan" && no_value()) {
      o->plan = true;
    } else if (name == "sms") {
      if (!take_value() || !parse_int(value, &o->sms) || o->sms < 1 || o->sms > 100000) {
        return "--sms needs a positive SM count";
      }
    } else if (name == "no-verify" && no_value()) {
      no_verify = true;
    } else if (name == "verify-only" && no_value()) {
      verify_only = true;
    } else if (name == "against-flashmla" && no_value()) {
      o->against_flashmla = true;
    } else if (name == "flashmla-second" && no_value()) {
      o->flashmla_second = true;
    } else if (name == "fp8-kv" && no_value()) {
      o->fp8_kv = true;
    } else if (name == "causal") {
      if (!has_value || value == "1" || value == "true") {
        o->shape_flags["causal"] = "1";
      } else if (value == "0" || value == "false") {
        o->shape_flags["causal"] = "0";
      } else {
        return "--causal takes no value (or 0/1)";
      }
    } else if (name == "case") {
      if (!take_value()) return "--case needs a value";
      const std::vector<std::string> names = split_commas(value);
      if (names.empty()) return "--case needs a case name";
      o->case_names.insert(o->case_names.end(), names.begin(), names.end());
    } else if (name == "op") {
      if (!take_value()) return "--op needs a value";
      if (!parse_op(value, &o->op)) return "unknown --op '" + value + "'";
      o->custom = true;
    } else if (name == "results" || name == "commit" || name == "suite" || name == "anchors") {
      if (!take_value() || value.empty()) return "--" + name + " needs a value";
      if (name == "results") o->results = value;
      if (name == "commit") o->commit = value;
      if (name == "suite") o->suite_path = value;
      if (name == "anchors") o->anchors_path = value;
    } else {
      bool is_shape = false;
      for (const char* flag : kShapeFlags) is_shape = is_shape || name == flag;
      if (!is_shape) return "unknown flag '" + arg + "'";
      if (!take_value()) return "--" + name + " needs a value";
      o->shape_flags[name] = value;
    }
  }
  if (verify_only && no_verify) return "--verify-only and --no-verify exclude each other";
  if (o->flashmla_second && !o->against_flashmla) return "--flashmla-second needs --against-flashmla";
  o->verify = !no_verify;
  o->time = !verify_only;
  if (!o->shape_flags.empty() && !o->custom) return "shape flags need --op";
  if (o->custom && !o->case_names.empty()) return "--case and --op exclude each other";
  return "";
}

// The custom case of --op: DeepSeek-like defaults, overridden by the flags.
std::string build_custom_case(const Options& o, Case* c) {
  *c = Case{};
  c->name = "custom";
  c->op = o.op;
  switch (o.op) {
    case Op::kDenseDecode:
      c->b = 64;
      c->s_q = 1;
      c->s_k = 4096;
      c->h_q = 128;
      break;
    case Op::kSparseDecode:
      c->b = 64;
      c->s_q = 2;
      c->s_k = 32768;
      c->h_q = 128;
      c->topk = 2048;
      break;
    case Op::kSparsePrefill:
      c->b = 1;
      c->s_q = 4096;
      c->s_kv = 32768;
      c->h_q = 128;
      c->topk = 2048;
      break;
  }
  for (const auto& [name, value] : o.shape_flags) {
    if (name == "causal") {
      c->causal = value == "1";
      continue;
    }
    if (name == "lengths") {
      if (!parse_length_mode(value, &c->lengths)) return "--lengths must be fixed, varlen or skewed";
      continue;
    }
    int64_t v = 0;
    if (!parse_int(value, &v)) return "--" + name + " needs a non-negative integer, got '" + value + "'";
    if (name == "b") c->b = v;
    if (name == "s_q") c->s_q = v;
    if (name == "s_k") c->s_k = v;
    if (name == "h_q") c->h_q = v;
    if (name == "h_kv") c->h_kv = v;
    if (name == "topk") c->topk = v;
    if (name == "s_kv") c->s_kv = v;
    if (name == "d_qk") c->d_qk = v;
  }
  if (c->op != Op::kDenseDecode && (o.shape_flags.count("lengths") || o.shape_flags.count("causal"))) {
    return "--lengths and --causal are dense decode flags";
  }
  if (c->op == Op::kSparsePrefill && (o.shape_flags.count("b") || o.shape_flags.count("s_k"))) {
    return "sparse prefill has no --b / --s_k (use --s_q / --s_kv)";
  }
  if (c->op != Op::kSparsePrefill && o.shape_flags.count("s_kv")) return "--s_kv is a sparse prefill flag";
  if (c->op == Op::kDenseDecode && o.shape_flags.count("topk")) return "dense decode has no --topk";
  if (c->op != Op::kDenseDecode && o.shape_flags.count("h_kv") && c->h_kv != 1) return "sparse ops have h_kv 1";
  c->d_v = std::min<int64_t>(512, c->d_qk);
  const std::string problem = check_case(*c);
  return problem.empty() ? "" : "custom shape: " + problem;
}

bool read_text(const std::string& path, std::string* text) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  std::stringstream buffer;
  buffer << file.rdbuf();
  *text = buffer.str();
  return true;
}

// Parses a JSON document from a file or the embedded copy.
bool load_document(const std::string& path, const char* embedded, const char* what, JsonValue* doc) {
  std::string text = embedded;
  if (!path.empty() && !read_text(path, &text)) {
    std::fprintf(stderr, "flashmla-bench: cannot read %s file %s\n", what, path.c_str());
    return false;
  }
  std::string error;
  if (!parse_json(text, doc, &error)) {
    std::fprintf(stderr, "flashmla-bench: %s %s: %s\n", what, path.empty() ? "(built-in)" : path.c_str(),
                 error.c_str());
    return false;
  }
  return true;
}

void print_list(const std::vector<Case>& cases, const std::map<std::string, double>& anchors) {
  std::printf("%-6s %-15s %-44s %11s %9s %9s %9s %3s  %-36s %s\n", "case", "op", "shape", "FlashMLA us", "GFLOP",
              "MB", "pool MiB", "L", "verified on", "note");
  for (const Case& c : cases) {
    const auto anchor = anchors.find(c.name);
    const int64_t pool = kv_pool_bytes(c);
    char anchor_text[32] = "-";
    if (anchor != anchors.end()) std::snprintf(anchor_text, sizeof(anchor_text), "%.2f", anchor->second);
    std::printf("%-6s %-15s %-44s %11s %9.2f %9.2f %9.1f %3lld  %-36s %s\n", c.name.c_str(), to_string(c.op),
                shape_string(c).c_str(), anchor_text, case_flops(c) / 1e9, case_bytes(c) / 1e6,
                double(pool) / (1 << 20), static_cast<long long>(num_kv_pools(pool)),
                shape_string(reduced_for_verification(c)).c_str(), c.note.c_str());
  }
  std::printf("%zu cases\n", cases.size());
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "" when device 0 is an sm_90 GPU; else why not.
std::string gpu_problem() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("cudaGetDeviceCount failed (") + cudaGetErrorString(err) + ")";
  }
  if (count == 0) return "no CUDA device";
  int major = 0;
  int minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
  if (major != 9) return "device 0 is sm_" + std::to_string(major) + std::to_string(minor) + ", not sm_90";
  return "";
}

void fill_gpu_meta(RunMeta* meta) {
  DeviceInfo info;
  if (get_device_info(0, &info).ok()) {
    meta->gpu = info.name;
    meta->sm_count = info.sm_count;
  } else {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) meta->gpu = prop.name;
    cudaDeviceGetAttribute(&meta->sm_count, cudaDevAttrMultiProcessorCount, 0);
    cudaGetLastError();
  }
  cudaDeviceGetAttribute(&meta->cc_major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&meta->cc_minor, cudaDevAttrComputeCapabilityMinor, 0);
  cudaDeviceGetAttribute(&meta->sm_clock_khz, cudaDevAttrClockRate, 0);
  cudaDeviceGetAttribute(&meta->mem_clock_khz, cudaDevAttrMemoryClockRate, 0);
}

// The row of a case that was not run because the CUDA context had failed.
CaseResult skipped_case(const Case& c, const char* why) {
  CaseResult r;
  r.shape = c;
  r.status = "error";
  r.message = std::string("skipped: the CUDA context failed ") + why;
  r.verified = Verified::kNotApplicable;
  return r;
}

int run(int argc, char** argv) {
  Options o;
  const std::string flag_error = parse_flags(argc, argv, &o);
  if (!flag_error.empty()) {
    std::fprintf(stderr, "flashmla-bench: %s\n\n%s", flag_error.c_str(), kUsage);
    return 2;
  }
  if (o.help) {
    std::printf("%s", kUsage);
    return 0;
  }

  JsonValue suite_doc;
  JsonValue anchors_doc;
  if (!load_document(o.suite_path, kEmbeddedSuiteJson, "suite", &suite_doc) ||
      !load_document(o.anchors_path, kEmbeddedAnchorsJson, "anchors", &anchors_doc)) {
    return 1;
  }
  std::vector<Case> suite;
  std::string error;
  if (!load_suite(suite_doc, &suite, &error)) {
    std::fprintf(stderr, "flashmla-bench: suite: %s\n", error.c_str());
    return 1;
  }
  const std::map<std::string, double> anchors = load_flashmla_anchors(anchors_doc);

  std::vector<Case> cases;
  if (o.custom) {
    Case c;
    error = build_custom_case(o, &c);
    if (!error.empty()) {
      std::fprintf(stderr, "flashmla-bench: %s\n\n%s", error.c_str(), kUsage);
      return 2;
    }
    cases.push_back(c);
  } else if (o.case_names.empty()) {
    cases = suite;
  } else {
    for (const std::string& name : o.case_names) {
      bool found = false;
      for (const Case& c : suite) {
        if (c.name == name) {
          cases.push_back(c);
          found = true;
        }
      }
      if (!found) {
        std::fprintf(stderr, "flashmla-bench: unknown case '%s' (--list shows them)\n\n%s", name.c_str(), kUsage);
        return 2;
      }
    }
  }
  if (o.fp8_kv) {
    for (Case& c : cases) {
      if (c.op != Op::kDenseDecode) continue;
      c.fp8_kv = true;
      c.name += "-fp8";
      error = check_case(c);
      if (!error.empty()) {
        std::fprintf(stderr, "flashmla-bench: %s: %s\n", c.name.c_str(), error.c_str());
        return 2;
      }
    }
  }
  if (o.list) {
    print_list(o.custom || !o.case_names.empty() ? cases : suite, anchors);
    return 0;
  }
  if (o.plan) {
    int sms = int(o.sms);
    if (sms == 0) {
      sms = 132;  // an H100 SXM
      if (gpu_problem().empty()) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
      cudaGetLastError();
    }
    return print_plans(cases, sms);
  }

  RunMeta meta;
  meta.commit = o.commit;
  meta.anchors = o.against_flashmla ? "FlashMLA in this run" : "FlashMLA on an H100 (shared/anchors/h100.json)";
  meta.started = utc_now();
  cudaRuntimeGetVersion(&meta.cuda_runtime);
  cudaDriverGetVersion(&meta.cuda_driver);
  cudaGetLastError();

  if (o.against_flashmla && make_flashmla_backend() == nullptr) {
    std::fprintf(stderr,
                 "flashmla-bench: --against-flashmla needs FlashMLA built in: configure with "
                 "-DFLASHMLA_PEER_SOURCE=<a deepseek-ai/FlashMLA checkout>\n");
    return 2;
  }
  const std::string problem = gpu_problem();
  if (!problem.empty()) return run_cpu_only(problem, meta, o.results);

  fill_gpu_meta(&meta);
  cudaSetDevice(0);
  GpuContext ctx;
  ctx.device = 0;
  ctx.num_sms = meta.sm_count;
  ctx.verify = o.verify;
  ctx.time = o.time;
  if (cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking) != cudaSuccess) {
    std::fprintf(stderr, "flashmla-bench: cannot create a CUDA stream\n");
    return 1;
  }
  std::fprintf(stderr, "flashmla-bench: %s, %d SMs, commit %s, %zu case(s)\n", meta.gpu.c_str(), meta.sm_count,
               meta.commit.c_str(), cases.size());
  if (o.time) {
    meta.ceilings = measure_ceilings(ctx.stream);
    meta.have_ceilings = meta.ceilings.copy_gbps > 0 && meta.ceilings.gemm_tflops > 0;
    if (!meta.ceilings.error.empty()) {
      std::fprintf(stderr, "flashmla-bench: warning: ceilings: %s\n", meta.ceilings.error.c_str());
    }
    std::fprintf(stderr, "flashmla-bench: ceilings: HBM copy %.0f GB/s, bf16 GEMM %.0f TFLOPS\n",
                 meta.ceilings.copy_gbps, meta.ceilings.gemm_tflops);
  }

  std::vector<CaseResult> results;
  bool failed = false;
  bool device_lost = false;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    CaseResult r;
    if (device_lost) {
      r = skipped_case(c, "on an earlier case");
    } else {
      std::fprintf(stderr, "[%zu/%zu] %s %s %s\n", i + 1, cases.size(), c.name.c_str(), to_string(c.op),
                   shape_string(c).c_str());
      const auto anchor = anchors.find(c.name);
      // A custom shape has no anchor, even when it matches a suite case's.
      double anchor_us = o.custom || anchor == anchors.end() ? 0.0 : anchor->second;
      // FlashMLA's run of the case: its "<case>/FlashMLA" row, printed
      // before ours whichever ran first.
      CaseResult peer;
      bool have_peer = false;
      auto run_peer = [&] {
        GpuContext peer_ctx = ctx;
        peer_ctx.backend = BackendKind::kFlashMla;
        peer = run_case_on_gpu(c, 0.0, peer_ctx);
        peer.shape.name = c.name + "/FlashMLA";
        if (cudaDeviceSynchronize() != cudaSuccess) {
          device_lost = true;
          peer.status = "error";
        }
        if (peer.status == "error" || peer.verified == Verified::kFail) failed = true;
        have_peer = true;
      };
      if (o.against_flashmla && !o.flashmla_second) {
        run_peer();
        anchor_us = peer.timed ? peer.time_us() : 0.0;
      }
      if (device_lost) {
        r = skipped_case(c, "in FlashMLA's run of the case");
      } else {
        r = run_case_on_gpu(c, anchor_us, ctx);
      }
      // A sticky error (a kernel fault) poisons every later CUDA call.
      const cudaError_t err = cudaDeviceSynchronize();
      if (err != cudaSuccess) {
        device_lost = true;
        r.status = "error";
        r.message += std::string(r.message.empty() ? "" : "; ") + "CUDA: " + cudaGetErrorString(err);
      }
      if (o.against_flashmla && o.flashmla_second) {
        if (device_lost) {
          peer = skipped_case(c, "in our run of the case");
          peer.shape.name = c.name + "/FlashMLA";
          have_peer = true;
        } else {
          run_peer();
        }
        r.anchor_us = peer.timed ? peer.time_us() : 0.0;
      }
      if (have_peer) {
        print_json_line(peer, meta);
        results.push_back(peer);
      }
    }
    if (r.status == "error" || r.verified == Verified::kFail) failed = true;
    print_json_line(r, meta);
    results.push_back(r);
  }
  print_table(results, meta);
  if (!o.results.empty()) {
    error = write_results_file(o.results, results, meta);
    if (!error.empty()) {
      std::fprintf(stderr, "flashmla-bench: %s\n", error.c_str());
      failed = true;
    } else {
      std::fprintf(stderr, "flashmla-bench: results written to %s\n", o.results.c_str());
    }
  }
  if (!device_lost) cudaStreamDestroy(ctx.stream);
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace flashmla::bench

int main(int argc, char** argv) { return flashmla::bench::run(argc, argv); }
