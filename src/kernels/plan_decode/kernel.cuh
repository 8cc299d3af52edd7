// The decode planner: one CTA stages each request's work (in 64-key blocks)
// in shared memory, then one thread runs the pure partition of
// common/decode_schedule.h. The walk is serial, O(b + num_workers): a few
// microseconds for serving batches, once per decode step (every layer of the
// step reuses the schedule).
#pragma once

#include <cstdint>

#include "common/decode_schedule.h"

namespace flashmla::kernels {

struct PlanDecodeParams {
  int32_t b;
  int32_t num_workers;
  bool sparse;
  const int32_t* lengths;        // dense: cache_seqlens; sparse: topk_length or nullptr
  int32_t topk;                  // sparse
  const int32_t* extra_lengths;  // sparse: extra_topk_length or nullptr
  int32_t extra_topk;            // sparse; 0 without an extra cache
  void* schedule;
};

// Work of request i in blocks. Sparse lengths are clamped to [0, topk]: a
// garbage topk_length can neither add work nor go negative.
__device__ inline int32_t request_work_blocks(const PlanDecodeParams& p, int32_t i) {
  if (!p.sparse) return work_blocks(p.lengths[i]);
  const int32_t main = p.lengths != nullptr ? min(max(p.lengths[i], 0), p.topk) : p.topk;
  int32_t extra = 0;
  if (p.extra_topk > 0) {
    extra = p.extra_lengths != nullptr ? min(max(p.extra_lengths[i], 0), p.extra_topk) : p.extra_topk;
  }
  return work_blocks(main) + work_blocks(extra);
}

__global__ void plan_decode_kernel(const PlanDecodeParams p) {
  extern __shared__ int32_t s_blocks[];  // [b]
  for (int32_t i = threadIdx.x; i < p.b; i += blockDim.x) s_blocks[i] = request_work_blocks(p, i);
  __syncthreads();
  if (threadIdx.x == 0) {
    partition_decode_work(p.b, p.num_workers,
                          piece_cost_blocks(p.sparse ? DecodeKind::kSparse : DecodeKind::kDense),
                          [&](int32_t i) { return s_blocks[i]; },
                          schedule_view(p.schedule, p.num_workers));
  }
}

}  // namespace flashmla::kernels
