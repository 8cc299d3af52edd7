// An implementation the benchmark times on a device workload: this library
// (run_case.cpp), or FlashMLA's own kernels on the same inputs when the
// benchmark is built with -DFLASHMLA_PEER_SOURCE=<a FlashMLA checkout>
// (peer_flashmla.cu): "FlashMLA measured in the same run".
#pragma once

#include <cstdint>
#include <memory>

#include <cuda_runtime_api.h>

#include "flashmla/status.h"
#include "suite.h"
#include "workloads.h"

namespace flashmla::bench {

class Backend {
 public:
  virtual ~Backend() = default;
  // Plans once (decode; one plan serves every layer) and allocates what all
  // calls share. `dw` outlives the backend.
  virtual Status prepare(const Case& c, const IndexData& index, DeviceWorkload* dw, int32_t num_sms,
                         cudaStream_t stream) = 0;
  // One call on KV pool `pool`: what an engine launches per layer. Captured
  // in a CUDA graph for timing.
  virtual Status call(int64_t pool, cudaStream_t stream) = 0;
  // After a call, outside the timing: leaves out, lse and max_logits in the
  // workload's own buffers and layout.
  virtual Status collect(cudaStream_t /*stream*/) { return Status{}; }
};

// This library.
std::unique_ptr<Backend> make_library_backend();

// FlashMLA's kernels; nullptr when the benchmark was built without them.
std::unique_ptr<Backend> make_flashmla_backend();

}  // namespace flashmla::bench
