// combine launcher: merges partial attention results over disjoint key sets.
#pragma once

#include <cuda_runtime_api.h>

#include "flashmla/args.h"

namespace flashmla::kernels {

// Launches on `stream` with programmatic dependent launch allowed, so it may
// start while the kernel that writes the partials drains; args are validated.
cudaError_t launch_combine(const CombineArgs& args, cudaStream_t stream);

}  // namespace flashmla::kernels
