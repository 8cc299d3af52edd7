// combine: one CTA of 4 warps per (request, query token, head) row.
//
// For partials i with natural-log lse_i and normalized outputs o_i:
//   M = max_i lse_i,  S = sum_i exp(lse_i - M),  lse = M + ln S
//   out = sum_i w_i o_i,  w_i = exp(lse_i - M) / (S + exp(sink - M))
// which is the attention over the union of the key sets, with the sink in
// the denominator only (it never enters lse). A NaN lse makes the row NaN,
// as it would be without the split. A partial with lse = -inf is
// empty: its weight is 0 and its out is never read, so it may hold NaN. A
// row whose partials are all empty gets out = 0 and lse = -inf.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace flashmla::kernels {

constexpr int kCombineWarps = 4;  // warps per CTA, one CTA per row
// 8 CTAs of 128 threads per SM leave 64 registers a thread: room for the
// kLoadsInFlight float4 loads (ptxas otherwise aims at 32 and spills).
constexpr int kCombineMinBlocks = 8;

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

// Merges `count` partials of one row; one CTA per row. Every warp reduces
// the lse values (a few hundred bytes, cached); warp w then owns dims
// [128 w, 128 w + 128) (and every 512th after), 4 per lane, so a row's
// partials are read by all 4 warps at once. lse_row[s * lse_stride] and
// partial_row[s * partial_stride + c] are partial s's lse and out.
template <typename PartialT, typename OutT>
__device__ __forceinline__ void combine_row(const float* lse_row, int64_t lse_stride, const PartialT* partial_row,
                                            int64_t partial_stride, int32_t count, const float* sink, int32_t d_v,
                                            OutT* out_row, float* lse_out) {
  const int32_t lane = threadIdx.x % 32;
  const int32_t warp = threadIdx.x / 32;
  float row_max = -INFINITY;
  bool nan_seen = false;  // fmaxf drops NaN; a NaN partial must still make a NaN row
  for (int32_t s = lane; s < count; s += 32) {
    const float lse_s = lse_row[s * lse_stride];
    row_max = fmaxf(row_max, lse_s);
    nan_seen |= isnan(lse_s);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, offset));
  const int32_t first_dim = warp * 128 + lane * 4;
  constexpr int32_t kDimStep = kCombineWarps * 128;
  if (__any_sync(0xffffffffu, nan_seen)) {
    for (int32_t c = first_dim; c < d_v; c += kDimStep) Vec4<OutT>::store(out_row + c, make_float4(NAN, NAN, NAN, NAN));
    if (threadIdx.x == 0) *lse_out = NAN;
    return;
  }
  if (row_max == -INFINITY) {  // every partial is empty
    for (int32_t c = first_dim; c < d_v; c += kDimStep) Vec4<OutT>::store(out_row + c, make_float4(0.f, 0.f, 0.f, 0.f));
    if (threadIdx.x == 0) *lse_out = -INFINITY;
    return;
  }
  float sum = 0.f;
  for (int32_t s = lane; s < count; s += 32) sum += expf(lse_row[s * lse_stride] - row_max);
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (threadIdx.x == 0) *lse_out = row_max + logf(sum);

  // A +inf sink makes the denominator infinite (out = 0); -inf adds nothing.
  const float sink_term = sink != nullptr ? expf(*sink - row_max) : 0.f;
  const float inv_denominator = 1.f / (sum + sink_term);

  // The weights go through shared memory, a chunk at a time, so that the
  // loop below issues kLoadsInFlight independent loads per thread: a row of
  // many partials is read at memory speed, not at one latency per partial.
  constexpr int32_t kWeightChunk = 256;
  constexpr int32_t kLoadsInFlight = 8;
  __shared__ float weights[kWeightChunk];
  for (int32_t c0 = 0; c0 < d_v; c0 += kDimStep) {  // the same trip count in every thread
    const int32_t c = c0 + first_dim;
    const bool active = c < d_v;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int32_t base = 0; base < count; base += kWeightChunk) {
      const int32_t n = min(kWeightChunk, count - base);
      __syncthreads();  // the previous chunk's weights are consumed
      for (int32_t s = threadIdx.x; s < n; s += blockDim.x) {
        const float lse_s = lse_row[(base + s) * lse_stride];
        weights[s] = lse_s == -INFINITY ? 0.f : expf(lse_s - row_max) * inv_denominator;
      }
      __syncthreads();
      const PartialT* chunk = partial_row + int64_t(base) * partial_stride + c;
      int32_t s = 0;
      for (; s + kLoadsInFlight <= n; s += kLoadsInFlight) {
        float w[kLoadsInFlight];
        float4 v[kLoadsInFlight];
#pragma unroll
        for (int k = 0; k < kLoadsInFlight; ++k) {
          w[k] = weights[s + k];
          // An empty partial (weight 0) is never read: its out may be NaN.
          v[k] = active && w[k] != 0.f ? Vec4<PartialT>::load(chunk + (s + k) * partial_stride)
                                       : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int k = 0; k < kLoadsInFlight; ++k) {
          acc.x += w[k] * v[k].x;
          acc.y += w[k] * v[k].y;
          acc.z += w[k] * v[k].z;
          acc.w += w[k] * v[k].w;
        }
      }
      for (; s < n; ++s) {
        const float w = weights[s];
        if (active && w != 0.f) {
          const float4 v = Vec4<PartialT>::load(chunk + s * partial_stride);
          acc.x += w * v.x;
          acc.y += w * v.y;
          acc.z += w * v.z;
          acc.w += w * v.w;
        }
      }
    }
    if (active) Vec4<OutT>::store(out_row + c, acc);
  }
}

// Grid: x = (request, query token), y = head: one CTA per row, so even a
// batch of one request keeps h_q CTAs busy.
template <typename PartialT, typename OutT>
__global__ void __launch_bounds__(kCombineWarps * 32, kCombineMinBlocks) combine_kernel(const CombineParams p) {
  const int32_t h = blockIdx.y;
  const int64_t i = blockIdx.x / p.s_q;  // request
  const int64_t j = blockIdx.x % p.s_q;  // query token

  // The partials may be written by the kernel launched just before this one.
  cudaGridDependencySynchronize();

  combine_row<PartialT, OutT>(
      p.lse_partial + i * p.stride_lse_partial_b + h * p.stride_lse_partial_h + j, p.stride_lse_partial_split,
      static_cast<const PartialT*>(p.out_partial) + i * p.stride_out_partial_b + j * p.stride_out_partial_s +
          h * p.stride_out_partial_h,
      p.stride_out_partial_split, p.num_splits, p.attn_sink != nullptr ? p.attn_sink + h : nullptr, p.d_v,
      static_cast<OutT*>(p.out) + i * p.stride_out_b + j * p.stride_out_s + h * p.stride_out_h,
      p.lse + i * p.stride_lse_b + h * p.stride_lse_h + j);
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
};

template <typename OutT>
__global__ void __launch_bounds__(kCombineWarps * 32, kCombineMinBlocks) combine_scheduled_kernel(const ScheduledCombineParams p) {
  const int32_t h = blockIdx.y;
  const int64_t i = blockIdx.x / p.s_q;
  const int64_t j = blockIdx.x % p.s_q;

  // The partials come from the decode kernel launched just before.
  cudaGridDependencySynchronize();
  const int32_t first = p.split_begin[i];
  const int32_t count = p.split_begin[i + 1] - first;
  // One slot: written directly by the decode kernel. Slots outside the
  // workspace (an unplanned schedule) are never read.
  if (count <= 1 || first < 0 || int64_t(first) + count > p.num_slots) return;

  const int64_t row = (int64_t(first) * p.s_q + j) * p.h_q + h;
  const int64_t split_stride = int64_t(p.s_q) * p.h_q;
  combine_row<float, OutT>(p.lse_partial + row, split_stride, p.out_partial + row * p.d_v,
                           split_stride * p.d_v, count, p.attn_sink != nullptr ? p.attn_sink + h : nullptr, p.d_v,
                           static_cast<OutT*>(p.out) + i * p.stride_out_b + j * p.stride_out_s + h * p.stride_out_h,
                           p.lse + i * p.stride_lse_b + h * p.stride_lse_h + j);
}

}  // namespace flashmla::kernels
