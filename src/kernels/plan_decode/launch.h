// plan_decode launcher: the schedule of a decode step, computed on the GPU.
#pragma once

#include <cuda_runtime_api.h>

#include "flashmla/args.h"

namespace flashmla::kernels {

// Largest batch whose per-request work the planner stages in shared memory.
constexpr int64_t kPlanMaxBatch = 32768;

// Launches the planner on `stream`; args are already validated.
cudaError_t launch_plan_decode(const PlanDecodeArgs& args, cudaStream_t stream);

}  // namespace flashmla::kernels
