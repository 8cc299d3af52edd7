// One case on the GPU: verify a reduced copy against the CPU reference, then
// time the full-size workload (suite.md), and the CPU reference itself.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "flashmla/status.h"
#include "report.h"
#include "suite.h"
#include "workloads.h"

namespace flashmla::bench {

// Which implementation a run times: this library, or FlashMLA built in
// (backend.h).
enum class BackendKind { kLibrary, kFlashMla };

struct GpuContext {
  BackendKind backend = BackendKind::kLibrary;
  int device = 0;
  int32_t num_sms = 0;
  cudaStream_t stream = nullptr;  // a created (non-default) stream: graphs capture on it
  bool verify = true;
  bool time = true;
};

// Never aborts: every failure is recorded in the result. `anchor_us` is
// FlashMLA's time for the case (0 if none).
CaseResult run_case_on_gpu(const Case& c, double anchor_us, const GpuContext& ctx);

// Runs the CPU reference on a host workload, writing hw->out, lse and max_logits.
Status run_reference(HostWorkload* hw);

}  // namespace flashmla::bench
