// sparse_decode launcher: SparseDecodeArgs (or DenseDecodeArgs over a V32
// cache) -> q's TMA descriptor and Params, the decode kernel, then the
// split-KV combine (programmatic dependent launch).
#pragma once

#include <cuda_runtime_api.h>

#include "flashmla/args.h"
#include "flashmla/status.h"

namespace flashmla::kernels {

// Whether a compiled variant serves these (validated) arguments; if not, the
// message says why (kNotSupported).
Status sparse_decode_supported(const SparseDecodeArgs& args);

// Launches on `stream`. out_partial / lse_partial: the split path's
// workspace ([slots, s_q, h_q, d_v] and [slots, s_q, h_q] fp32).
Status launch_sparse_decode(const SparseDecodeArgs& args, float* out_partial, float* lse_partial,
                            cudaStream_t stream);

// Dense decode over a V32 cache runs the same kernels, its positions read
// through the block table (params.h, CacheParams). The arguments are
// validated dense_decode arguments with kv_format kFp8V32.
Status dense_decode_fp8_supported(const DenseDecodeArgs& args);
Status launch_dense_decode_fp8(const DenseDecodeArgs& args, float* out_partial, float* lse_partial,
                               cudaStream_t stream);

}  // namespace flashmla::kernels
