// sparse_prefill launcher: SparsePrefillArgs -> the q tensor map and Params,
// then the prefill kernel (programmatic dependent launch).
#pragma once

#include <cuda_runtime_api.h>

#include "flashmla/args.h"
#include "flashmla/status.h"

namespace flashmla::kernels {

// Whether a compiled variant serves these (validated) arguments; if not, the
// message says why (kNotSupported).
Status sparse_prefill_supported(const SparsePrefillArgs& args);

// Launches on `stream`; s_q = 0 launches nothing.
Status launch_sparse_prefill(const SparsePrefillArgs& args, cudaStream_t stream);

}  // namespace flashmla::kernels
