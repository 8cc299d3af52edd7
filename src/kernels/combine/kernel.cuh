// combine: one warp per (request, query token, head) row, or, for batches
// of few rows, per quarter of a row's d_v (kChunks = 4).
//
// For partials i with natural-log lse_i and normalized outputs o_i:
//   M = max_i lse_i,  S = sum_i exp(lse_i - M),  lse = M + ln S
//   out = sum_i w_i o_i,  w_i = exp(lse_i - M) / (S + exp(sink - M))
// which is the attention over the union of the key sets, with the sink in
// the denominator only (it never enters lse). A NaN lse makes the row NaN,
// as it would be without the split. A partial with lse = -inf is
// empty: its weight is 0 and its out is never used, so it may hold NaN. A
// row whose partials are all empty gets out = 0 and lse = -inf.
//
// Why a warp per row: a split-KV decode's combine is a few dependent global
// round trips per row (the slots, the lse values, the partials). With a CTA
// of 4 warps per row, every row paid them behind two CTA barriers and its
// few partials (2-3 for short contexts) were read one latency at a time: 14
// us for D12's 4096 rows. A warp needs no barrier (weights move by shuffle)
// and issues all its loads of a batch of partials at once; the first batch
// goes out with the lse loads, not after the weights (one round trip less),
// and a 512-dim warp keeps 4 partials in flight: D15's one long request (22
// partials) is merged by single warps when the batch has more than 1024
// rows, so the batch size is its round-trip count (ncu after D15: 18.1 us
// with 2 partials and the weights first, 13.2 us now;
// bench/results/NVIDIA-H200-combine-variants.txt also has the designs that
// lost: a CTA per split row, and a persistent walk over a split-request list).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "common/decode_schedule.h"  // kCombineFewRows
#include "device/trace.cuh"

namespace flashmla::kernels {

constexpr int kCombineWarps = 4;     // warps per CTA, each with its own row (or row chunk)
constexpr int kCombineMinBlocks = 4;  // 16 warps per SM at up to 128 registers a thread

struct CombineParams {
  int32_t num_splits;
  int32_t s_q;
  int32_t h_q;
  int32_t d_v;
  const void* out_partial;
  int64_t stride_out_partial_split, stride_out_partial_b, stride_out_partial_s, stride_out_partial_h;
  const float* lse_partial;
  int64_t stride_lse_partial_split, stride_lse_partial_b, stride_lse_partial_h;
  const float* attn_sink;
  void* out;
  int64_t stride_out_b, stride_out_s, stride_out_h;
  float* lse;
  int64_t stride_lse_b, stride_lse_h;
};

template <typename T>
struct Vec4;  // four elements of T, loaded and stored as one access
template <>
struct Vec4<float> {
  __device__ static float4 load(const float* p) { return *reinterpret_cast<const float4*>(p); }
  __device__ static void store(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
};
template <>
struct Vec4<__nv_bfloat16> {
  __device__ static float4 load(const __nv_bfloat16* p) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
    const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
    return make_float4(lo.x, lo.y, hi.x, hi.y);
  }
  __device__ static void store(__nv_bfloat16* p, float4 v) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y);
    __nv_bfloat162 hi = __floats2bfloat162_rn(v.z, v.w);
    uint2 raw;
    raw.x = *reinterpret_cast<uint32_t*>(&lo);
    raw.y = *reinterpret_cast<uint32_t*>(&hi);
    *reinterpret_cast<uint2*>(p) = raw;
  }
};
template <>
struct Vec4<__half> {
  __device__ static float4 load(const __half* p) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
    const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
    return make_float4(lo.x, lo.y, hi.x, hi.y);
  }
  __device__ static void store(__half* p, float4 v) {
    __half2 lo = __floats2half2_rn(v.x, v.y);
    __half2 hi = __floats2half2_rn(v.z, v.w);
    uint2 raw;
    raw.x = *reinterpret_cast<uint32_t*>(&lo);
    raw.y = *reinterpret_cast<uint32_t*>(&hi);
    *reinterpret_cast<uint2*>(p) = raw;
  }
};

// A batch of partials in flight: 16 float4 per lane (64 registers), kVec
// float4 per partial.
template <int kVec, typename PartialT>
struct PartialBatch {
  static constexpr int kSize = 16 / kVec;
  float4 v[kSize][kVec];

  // Partials first .. first + kSize - 1 of those below count; the rest are
  // zeros and never used.
  __device__ __forceinline__ void load(const PartialT* lane_row, int64_t partial_stride, int32_t first,
                                       int32_t count) {
#pragma unroll
    for (int u = 0; u < kSize; ++u) {
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        v[u][k] = first + u < count ? Vec4<PartialT>::load(lane_row + int64_t(first + u) * partial_stride + 128 * k)
                                    : make_float4(0.f, 0.f, 0.f, 0.f);
      }
    }
  }
};

// One warp merges `count` partials of one row over kVec * 128 dims from
// dim0 (lane l: the float4 groups at dim0 + 4 (l + 32 k), k < kVec).
// lse_row[s * lse_stride] and partial_row[s * partial_stride + c] are
// partial s's lse and out; lse_out (nullptr: another warp's job) gets the
// row's lse. The first batch of partials is loaded before the weights are
// known (the loads do not depend on them), so it arrives with the lse
// values; a partial whose weight turns out 0 (lse = -inf) is never used.
template <int kVec, typename PartialT, typename OutT>
__device__ __forceinline__ void combine_row(const float* lse_row, int64_t lse_stride, const PartialT* partial_row,
                                            int64_t partial_stride, int32_t count, const float* sink, int32_t dim0,
                                            OutT* out_row, float* lse_out) {
  using Batch = PartialBatch<kVec, PartialT>;
  const int32_t lane = threadIdx.x % 32;
  const PartialT* lane_row = partial_row + dim0 + 4 * lane;
  Batch batch;
  batch.load(lane_row, partial_stride, 0, count);

  // Lane l holds partial l's lse (the first 32; later ones are re-read).
  const float lse_lane = lane < count ? lse_row[lane * lse_stride] : -INFINITY;
  float row_max = lse_lane;
  bool nan_seen = isnan(lse_lane);  // fmaxf drops NaN; a NaN partial must still make a NaN row
  for (int32_t s = lane + 32; s < count; s += 32) {
    const float lse_s = lse_row[s * lse_stride];
    row_max = fmaxf(row_max, lse_s);
    nan_seen |= isnan(lse_s);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, offset));
  const bool nan_row = __any_sync(0xffffffffu, nan_seen);
  if (nan_row || row_max == -INFINITY) {
    // A NaN partial makes the row NaN; a row of empty partials is 0, lse -inf.
    const float fill = nan_row ? NAN : 0.f;
#pragma unroll
    for (int k = 0; k < kVec; ++k) Vec4<OutT>::store(out_row + dim0 + 4 * (lane + 32 * k), make_float4(fill, fill, fill, fill));
    if (lse_out != nullptr && lane == 0) *lse_out = nan_row ? NAN : -INFINITY;
    return;
  }
  float sum = lse_lane == -INFINITY ? 0.f : expf(lse_lane - row_max);
  for (int32_t s = lane + 32; s < count; s += 32) sum += expf(lse_row[s * lse_stride] - row_max);
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lse_out != nullptr && lane == 0) *lse_out = row_max + logf(sum);

  // A +inf sink makes the denominator infinite (out = 0); -inf adds nothing.
  const float sink_term = sink != nullptr ? expf(*sink - row_max) : 0.f;
  const float inv_denominator = 1.f / (sum + sink_term);

  float4 acc[kVec];
#pragma unroll
  for (int k = 0; k < kVec; ++k) acc[k] = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int32_t base = 0; base < count; base += 32) {  // the same trip count in every lane
    const int32_t n = min(32, count - base);
    // Lane l holds partial base + l's weight; the loop below takes it by shuffle.
    const float lse_l = base == 0 ? lse_lane : lane < n ? lse_row[(base + lane) * lse_stride] : -INFINITY;
    const float w_lane = lse_l == -INFINITY ? 0.f : expf(lse_l - row_max) * inv_denominator;
    for (int32_t s = 0; s < n; s += Batch::kSize) {
      if (base + s > 0) batch.load(lane_row, partial_stride, base + s, count);  // the first is in flight
#pragma unroll
      for (int u = 0; u < Batch::kSize; ++u) {
        const float wu = __shfl_sync(0xffffffffu, w_lane, (s + u) % 32);
        if (s + u < n && wu != 0.f) {  // an empty partial (weight 0) is never used: it may be NaN
#pragma unroll
          for (int k = 0; k < kVec; ++k) {
            acc[k].x += wu * batch.v[u][k].x;
            acc[k].y += wu * batch.v[u][k].y;
            acc[k].z += wu * batch.v[u][k].z;
            acc[k].w += wu * batch.v[u][k].w;
          }
        }
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kVec; ++k) Vec4<OutT>::store(out_row + dim0 + 4 * (lane + 32 * k), acc[k]);
}

// The row (head) and the first dim of this warp's part of it: blockIdx.y
// counts groups of kCombineWarps (head, chunk) pairs. kDimV is 512, the
// only d_v the kernels are built for (validated).
template <int kChunks>
struct CombineTask {
  int32_t head;
  int32_t dim0;
  bool valid;
};
template <int kChunks>
__device__ __forceinline__ CombineTask<kChunks> combine_task(int32_t h_q) {
  const int32_t task = int32_t(blockIdx.y) * kCombineWarps + int32_t(threadIdx.x / 32);
  return {task / kChunks, (task % kChunks) * (512 / kChunks), task / kChunks < h_q};
}

// Grid: x = (request, query token), y = groups of kCombineWarps (head,
// chunk) pairs: one warp per row part, so even a batch of one request keeps
// h_q warps busy.
template <int kChunks, typename PartialT, typename OutT>
__global__ void __launch_bounds__(kCombineWarps * 32, kCombineMinBlocks) combine_kernel(const CombineParams p) {
  const CombineTask<kChunks> t = combine_task<kChunks>(p.h_q);
  const int64_t i = blockIdx.x / p.s_q;  // request
  const int64_t j = blockIdx.x % p.s_q;  // query token

  // The partials may be written by the kernel launched just before this one.
  cudaGridDependencySynchronize();
  if (!t.valid) return;
  const int32_t h = t.head;
  combine_row<4 / kChunks, PartialT, OutT>(
      p.lse_partial + i * p.stride_lse_partial_b + h * p.stride_lse_partial_h + j, p.stride_lse_partial_split,
      static_cast<const PartialT*>(p.out_partial) + i * p.stride_out_partial_b + j * p.stride_out_partial_s +
          h * p.stride_out_partial_h,
      p.stride_out_partial_split, p.num_splits, p.attn_sink != nullptr ? p.attn_sink + h : nullptr, t.dim0,
      static_cast<OutT*>(p.out) + i * p.stride_out_b + j * p.stride_out_s + h * p.stride_out_h,
      t.dim0 == 0 ? p.lse + i * p.stride_lse_b + h * p.stride_lse_h + j : nullptr);
}

// The split-KV combine of a decode schedule: request i's partials are slots
// [split_begin[i], split_begin[i + 1]) of the workspace, laid out
// [slot, s_q, h_q, d_v] (out, fp32, normalized) and [slot, s_q, h_q] (lse).
// A request with one slot was written to out directly by the decode kernel.
struct ScheduledCombineParams {
  int32_t s_q;
  int32_t h_q;
  int32_t d_v;
  int32_t num_slots;
  const int32_t* split_begin;  // [b + 1]
  const float* out_partial;
  const float* lse_partial;
  const float* attn_sink;  // [h_q] or nullptr
  void* out;
  int64_t stride_out_b, stride_out_s, stride_out_h;
  float* lse;
  int64_t stride_lse_b, stride_lse_h;
#if FLASHMLA_TRACE
  uint64_t* trace;  // phase stamps (device/trace.cuh), measurement builds only
#endif
};

template <int kChunks, typename OutT>
__global__ void __launch_bounds__(kCombineWarps * 32, kCombineMinBlocks) combine_scheduled_kernel(const ScheduledCombineParams p) {
  const CombineTask<kChunks> t = combine_task<kChunks>(p.h_q);
  const int64_t i = blockIdx.x / p.s_q;
  const int64_t j = blockIdx.x % p.s_q;

  if (threadIdx.x == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceCombineEntry);
  // The schedule may be read before the dependency wait: it was complete
  // before the decode kernel launched just before this one passed its own
  // wait, and that kernel lets this grid launch only after it. So the CTAs
  // of requests with one slot (written directly by the decode kernel) leave
  // at once, while the decode drains, instead of holding a slot of this grid
  // until it ends. Slots outside the workspace (an unplanned schedule) are
  // never read.
  const int32_t first = p.split_begin[i];
  const int32_t count = p.split_begin[i + 1] - first;
  if (!t.valid || count <= 1 || first < 0 || int64_t(first) + count > p.num_slots) return;
  // The partials come from the decode kernel.
  cudaGridDependencySynchronize();
  if (threadIdx.x == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceCombineReady);
  const int32_t h = t.head;

  const int64_t row = (int64_t(first) * p.s_q + j) * p.h_q + h;
  const int64_t split_stride = int64_t(p.s_q) * p.h_q;
  combine_row<4 / kChunks, float, OutT>(
      p.lse_partial + row, split_stride, p.out_partial + row * p.d_v, split_stride * p.d_v, count,
      p.attn_sink != nullptr ? p.attn_sink + h : nullptr, t.dim0,
      static_cast<OutT*>(p.out) + i * p.stride_out_b + j * p.stride_out_s + h * p.stride_out_h,
      t.dim0 == 0 ? p.lse + i * p.stride_lse_b + h * p.stride_lse_h + j : nullptr);
  if (threadIdx.x == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceCombineFirstRow);
}

}  // namespace flashmla::kernels
