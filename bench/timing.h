// Timing per suite.md: n consecutive calls captured in one CUDA graph, one
// warm replay, 5 timed replays, median / n. And the two ceilings measured in
// the same process: HBM bandwidth (a 2 GiB device-to-device copy, bytes read
// plus written) and the bf16 matrix rate (an 8192^3 cuBLAS product, fp32
// accumulation).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "flashmla/status.h"

namespace flashmla::bench {

constexpr int kTimedReplays = 5;

struct GraphTiming {
  int64_t calls = 0;               // n: calls per graph
  std::vector<double> replay_us;   // each timed replay
  double per_call_us = 0.0;        // median replay / n
};

// Enqueues call number `k` (0-based) on `stream`.
using EnqueueCall = std::function<Status(int64_t k, cudaStream_t stream)>;

// Captures n calls into a graph and times it. Returns "" on success, or a
// CUDA error message. A call that returns a non-ok Status ends the capture;
// that status is left in *call_status and nothing is timed.
std::string time_calls_in_graph(int64_t n, const EnqueueCall& call, cudaStream_t stream,
                                GraphTiming* timing, Status* call_status);

struct Ceilings {
  double copy_gbps = 0.0;    // 2 GiB device-to-device copy, read + write bytes
  double gemm_tflops = 0.0;  // bf16 8192^3 through cuBLAS
  std::vector<double> copy_runs_us;
  std::vector<double> gemm_runs_us;
  std::string error;         // "" when both were measured
};
Ceilings measure_ceilings(cudaStream_t stream);

double median(std::vector<double> values);

}  // namespace flashmla::bench
