// The public Args of each operation for a benchmark workload. The same
// builder serves the CPU reference (host pointers) and the library (device
// pointers): only the Tensors differ.
#pragma once

#include <cstdint>

#include "flashmla/args.h"
#include "suite.h"
#include "workloads.h"

namespace flashmla::bench {

// Where a workload's tensors live (all host or all device), contiguous.
struct Tensors {
  const void* q = nullptr;
  const void* kv = nullptr;  // one KV pool
  const int32_t* block_table = nullptr;
  const int32_t* lengths = nullptr;
  const int32_t* indices = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  float* max_logits = nullptr;
};

Tensors host_tensors(HostWorkload& hw);
Tensors device_tensors(DeviceWorkload& dw, int64_t pool);

// The schedule is left empty; the caller plans and sets it.
DenseDecodeArgs make_dense_decode_args(const Case& c, const IndexData& index, const Tensors& t);
SparseDecodeArgs make_sparse_decode_args(const Case& c, const IndexData& index, const Tensors& t);
SparsePrefillArgs make_sparse_prefill_args(const Case& c, const Tensors& t);

// plan_decode's arguments for a decode case (lengths on the device for
// dense decode; sparse decode uses every index, so no topk_length).
PlanDecodeArgs make_plan_args(const Case& c, const Tensors& t, int32_t num_sms);

}  // namespace flashmla::bench
