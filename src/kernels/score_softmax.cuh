// The score warpgroup's per-block softmax, shared by dense decode, sparse
// decode and sparse prefill: a 64 x 64 wgmma score fragment holds whole rows
// per quad (registers with (i / 2) % 2 == h hold the thread's row h), so the
// online softmax needs only quad shuffles, and P goes to a 128-byte-swizzled
// K-major tile for the P V wgmma of both consumer warpgroups.
#pragma once

#include <cstdint>

#include "device/fast_math.cuh"
#include "device/pack.cuh"
#include "device/swizzle.h"
#include "device/wgmma_layout.h"

namespace flashmla::kernels {

// tSrS holds the block's masked logits, not yet scaled (a masked one is
// -inf), block_max each row's max over this thread's registers, scale_log2
// the softmax scale times log2(e) (> 0, so the max of the scaled logits is
// the scaled max). Finishes the max over the quad, updates the running max
// (base 2, scaled) and this thread's partial row sums, turns S into
// P = exp2(S * scale_log2 - max) (one FFMA and one MUFU.EX2 per logit), and
// gives the factor each row of O must be rescaled by before P V.
template <typename Fragment>
__device__ __forceinline__ void online_softmax_step(Fragment& tSrS, float (&block_max)[2], float (&row_max)[2],
                                                    float (&row_sum)[2], float (&rescale)[2], float scale_log2) {
  float max_used[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 1));
    block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 2));
    const float new_max = fmaxf(row_max[h], block_max[h] * scale_log2);
    // A row with no visible key yet keeps max -inf: exponentiate against 0
    // instead, so exp2(-inf - -inf) never makes a NaN.
    max_used[h] = new_max == -INFINITY ? 0.f : new_max;
    rescale[h] = device::exp2_ftz(row_max[h] - max_used[h]);
    row_max[h] = new_max;
    row_sum[h] *= rescale[h];
  }
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    const int h = (i / 2) % 2;
    const float prob = device::exp2_ftz(fmaf(tSrS(i), scale_log2, -max_used[h]));
    tSrS(i) = prob;
    row_sum[h] += prob;
  }
}

// P rounded to Element (as the spec says): registers i, i + 1 are adjacent
// keys, one 4-byte store into the 64 x 64 swizzled tile at `tile`.
template <typename Element, typename Fragment>
__device__ __forceinline__ void store_p_tile(char* tile, const Fragment& tSrS, int tid_wg) {
#pragma unroll
  for (int i = 0; i < 32; i += 2) {
    const device::FragmentCoord c = device::wgmma_accumulator_coord(tid_wg, i);
    const uint32_t offset = device::swizzle_128b(uint32_t(c.row * 128 + c.col * 2));
    *reinterpret_cast<uint32_t*>(tile + offset) = device::pack_pair<Element>(tSrS(i), tSrS(i + 1));
  }
}

}  // namespace flashmla::kernels
