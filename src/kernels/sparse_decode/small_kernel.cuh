// Sparse FP8 decode for h_q <= 32: one CTA per (worker, query token). Two
// producer warpgroups gather (one bulk copy per token into a raw ring, two
// blocks ahead) and dequantize (a token quarter per thread); one
// consumer warpgroup computes with the heads on the wgmma N dimension:
// S^T = K Q^T (M = 64 tokens, N = kN heads), then O^T += V^T P^T (8 m64
// tiles of V dims). Softmax statistics are per column (head): reduced over
// the 16 tokens of a warp by shuffles, over the 4 warps through shared
// memory. See README.md.
#pragma once

#include <cstdint>

#include <cuda.h>

#include <cute/tensor.hpp>

#include "common/decode_schedule.h"
#include "device/cute_gemm.cuh"
#include "device/fast_math.cuh"
#include "device/fence.cuh"
#include "device/mbarrier.cuh"
#include "device/named_barrier.cuh"
#include "device/pdl.cuh"
#include "device/swizzle.h"
#include "device/tma.cuh"
#include "device/warpgroup_registers.cuh"
#include "device/wgmma_layout.h"
#include "kernels/sparse_decode/kernel.cuh"
#include "kernels/sparse_decode/small_config.cuh"

namespace flashmla::kernels::sparse_decode {

// Named barrier ids of the consumer warpgroup (128 threads).
enum : uint32_t {
  kSmallBarMax = 1,       // every warp has voted whether the block moves the running max
  kSmallBarPReady = 2,    // P^T of the block is in shared memory
  kSmallBarSum = 3,       // every warp's per-head sum is published
  kSmallBarMaxMoved = 4,  // (blocks that move it) every warp's per-head block maximum is published
};

// Lazy rescaling: the running max of a head moves only when some warp's
// block maximum exceeds it by more than this (log2 units), so P <= 2^8.
constexpr float kLazyMaxSlack = 8.f;

// Producer: thread t handles token t / 4 of each block (lane quarter t % 4).
// Block n's raw bytes are read from the raw ring and dequantized into the
// bf16 stage while the copies of blocks n + 1 and n + 2 are in flight (those
// of n + 2 are issued as soon as block n's slots are read) and the indices
// of block n + 3 load: no iteration waits on a load it has just issued.
template <typename Cfg>
__device__ __forceinline__ void produce_small(const Params& p, typename Cfg::SharedStorage& smem,
                                             const WorkerRange& range, const int32_t* split_begin, int32_t s) {
  constexpr KVFormat kFormat = Cfg::kFormat;
  const int tid = threadIdx.x;  // 0..255
  const int q = tid % 4;
  const int warp = tid / 32;
  const int tok[1] = {tid / 4};

  BlockCursor fetch(range, p, split_begin);
  BlockSlot<1> cur = fetch_slot<1, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);
  BlockSlot<1> next = fetch_slot<1, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);
  BlockSlot<1> next2 = fetch_slot<1, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);
  uint2 scales_cur = make_uint2(0, 0), scales_next = make_uint2(0, 0), scales_next2 = make_uint2(0, 0);  // MODEL1

  // The copies of block `item` (the slot's block) into its raw stage; the
  // slot is the same for every producer thread, so the branch is uniform.
  auto issue = [&](const BlockSlot<1>& slot, int32_t item, uint2& scales) {
    if ((slot.flags & kSlotLive) == 0) return;
    const int raw_stage = item % Cfg::kRawStages;
    issue_token_copy<kFormat>(resolve_slot(p, slot, 0), q, smem.raw[raw_stage] + tok[0] * Cfg::kRawSlotBytes,
                              &smem.raw_full[raw_stage][warp], scales);
  };
  issue(cur, 0, scales_cur);
  issue(next, 1, scales_next);

  for (int32_t item = 0; (cur.flags & kSlotLive) != 0; ++item) {
    const int raw_stage = item % Cfg::kRawStages;
    const TokenRef ref = resolve_slot(p, cur, 0);
    device::mbarrier_wait_parity(&smem.raw_full[raw_stage][warp], (item / Cfg::kRawStages) & 1);
    RawToken<kFormat> raw[1];
    read_raw_token<kFormat>(smem.raw[raw_stage] + tok[0] * Cfg::kRawSlotBytes, ref.page != nullptr, scales_cur, q,
                            raw[0]);
    // This thread's reads of the slot before the async-proxy copy that refills it.
    device::fence_proxy_async_shared_cta();
    issue(next2, item + 2, scales_next2);
    const BlockSlot<1> after = fetch_slot<1, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);

    // Group 0 (tiles 0-3) once the consumer's first P V half of the
    // previous block is done, then group 1 (the rest, RoPE included).
    char* stage_bytes = reinterpret_cast<char*>(smem.k);
    if (item > 0) device::mbarrier_wait_parity(&smem.k_empty[0], (item - 1) & 1);
    store_tokens<Cfg, 1, 0, Cfg::kGroup0Chunks, false>(raw, q, tok, stage_bytes);
    if (q == 0) smem.valid[0][tok[0]] = ref.page != nullptr;
    device::fence_proxy_async_shared_cta();
    device::mbarrier_arrive(&smem.k_full[0]);
    if (item > 0) device::mbarrier_wait_parity(&smem.k_empty[1], (item - 1) & 1);
    store_tokens<Cfg, 1, Cfg::kGroup0Chunks, RawToken<kFormat>::kChunks, true>(raw, q, tok, stage_bytes);
    device::fence_proxy_async_shared_cta();
    device::mbarrier_arrive(&smem.k_full[1]);

    cur = next;
    next = next2;
    next2 = after;
    scales_cur = scales_next;
    scales_next = scales_next2;
  }
}

template <typename Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    sparse_decode_small_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ Params p) {
  using Element = typename Cfg::Element;
  constexpr int kN = Cfg::kN;
  constexpr int kBlockN = Cfg::kBlockN;
  constexpr int kHeadsPerThread = kN / 4;  // columns 8 j + 2 (lane % 4) + e
  using SharedStorage = typename Cfg::SharedStorage;

  extern __shared__ __align__(1024) char smem_raw[];
  SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_raw);

  const int worker = blockIdx.x;
  const int32_t s = blockIdx.y;
  const int32_t q_box_heads = p.h_q;  // <= kN: the dispatcher's choice

  if (threadIdx.x == 0) {
    device::prefetch_tensormap(&q_map);
    device::mbarrier_init(&smem.q_full, 1);
    for (int g = 0; g < Cfg::kGroups; ++g) {
      device::mbarrier_init(&smem.k_full[g], Cfg::kProducerThreads);
      device::mbarrier_init(&smem.k_empty[g], 1);
    }
    for (int st = 0; st < Cfg::kRawStages; ++st) {
      for (int w = 0; w < Cfg::kProducerWarps; ++w) device::mbarrier_init(&smem.raw_full[st][w], 1);
    }
    device::fence_barrier_init();
  }
  // No CTA returns before this wait: the scheduled combine launched after
  // this kernel reads the schedule before its own wait, relying on it
  // (kernels/combine/kernel.cuh).
  device::grid_dependency_wait();
  __syncthreads();

  const ScheduleView schedule = schedule_view(const_cast<void*>(p.schedule), p.num_workers);
  const WorkerRange planned = schedule.workers[worker];
  const bool sane = planned.begin_req >= 0 && planned.begin_req <= planned.end_req && planned.end_req <= p.b &&
                    planned.begin_block >= 0 && planned.end_block >= 0;
  const WorkerRange range = sane ? planned : WorkerRange{p.b, 0, p.b, 0, 0, {0, 0, 0}};
  const int32_t* split_begin = schedule.split_begin;

  if (threadIdx.x < Cfg::kProducerThreads) {
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kProducerRegisters>();
    produce_small<Cfg>(p, smem, range, split_begin, s);
    device::grid_dependency_launch_dependents();
    return;
  }
  device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kConsumerRegisters>();

  const int tid = threadIdx.x - Cfg::kProducerThreads;  // 0..127
  const int warp = tid / 32;
  const int lane = tid % 32;

  Tensor sQ = make_tensor(make_smem_ptr(smem.q), typename Cfg::SmemLayoutQ{});    // (kN, d_qk)
  Tensor sK = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutK{});    // (64, d_qk, stages)
  Tensor sVt = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutVt{});  // (512, 64, stages)
  Tensor sPt = make_tensor(make_smem_ptr(smem.pt), typename Cfg::SmemLayoutPt{}); // (kN, 64)

  typename Cfg::TiledMmaQK mma_qk;
  typename Cfg::TiledMmaPV mma_pv;
  auto thr_qk = mma_qk.get_thread_slice(tid);
  auto thr_pv = mma_pv.get_thread_slice(tid);
  Tensor tSrQ = thr_qk.partition_fragment_B(sQ);                                   // (MMA, 1, k)
  Tensor tOrPt = thr_pv.partition_fragment_B(sPt);                                 // (MMA, 1, 4)
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<Int<kBlockN>, Int<kN>>{});      // kN / 2 fp32
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<Int<Cfg::kDimV>, Int<kN>>{});   // 4 kN fp32
  static_assert(decltype(size(tSrS))::value == kN / 2, "S^T fragment");
  static_assert(decltype(size(tOrO))::value == 4 * kN, "O^T fragment");
  constexpr int kSRegs = kN / 2;
  constexpr int kORegs = 4 * kN;

  // Head slot of accumulator register i (same for S^T and every m-tile of
  // O^T): column 8 (i / 4) + 2 (lane % 4) + i % 2 -> slot 2 (i / 4) + i % 2.
  auto slot_of = [](int i) { return 2 * ((i % kSRegs) / 4) + i % 2; };
  auto head_of_slot = [&](int slot) { return 8 * (slot / 2) + 2 * (lane % 4) + slot % 2; };
  // Token rows of this thread in S^T: 16 warp + lane / 4 (i % 4 < 2) and + 8.
  const int key0 = 16 * warp + lane / 4;

  // The consumers load q themselves, the next piece's right after the last
  // Q K^T of a piece (as the 64-head kernel's score warpgroup does): the
  // producer never waits for q's release.
  PieceCursor q_pieces(range);  // the pieces with blocks, in order: whose q comes next
  auto load_next_q = [&]() {
    Piece next;
    if (q_pieces.next_with_blocks(p, split_begin, next) && tid == 0) {
      load_q_tiles<Cfg>(&q_map, smem, Cfg::kQTileBytes, 0, s, next.req, q_box_heads);
    }
  };
  load_next_q();

  int32_t item = 0;
  int32_t q_loads = 0;
  PieceCursor pieces(range);
  Piece piece;
  while (pieces.next(p, split_begin, piece)) {
    float head_max[kHeadsPerThread];
    float head_sum[kHeadsPerThread];  // this thread's tokens only
    CUTE_UNROLL
    for (int h = 0; h < kHeadsPerThread; ++h) {
      head_max[h] = -INFINITY;
      head_sum[h] = 0.f;
    }
    clear(tOrO);

    if (piece.to > piece.from) {
      device::mbarrier_wait_parity(&smem.q_full, q_loads & 1);
      ++q_loads;
    }
    for (int32_t block = piece.from; block < piece.to; ++block, ++item) {
      // S^T = K Q^T, each tile group as it lands.
      Tensor tSrK = thr_qk.partition_fragment_A(sK(_, _, 0));
      device::mbarrier_wait_parity(&smem.k_full[0], item & 1);
      device::gemm_async_k<0, Cfg::kGroup0KSteps>(mma_qk, tSrK, tSrQ, tSrS, /*zero_init=*/true);
      device::mbarrier_wait_parity_in_asm(&smem.k_full[1], item & 1);
      device::gemm_async_k<Cfg::kGroup0KSteps, decltype(size<2>(tSrK))::value>(mma_qk, tSrK, tSrQ, tSrS,
                                                                                /*zero_init=*/false);
      warpgroup_wait<0>();

      const bool valid_lo = smem.valid[0][key0] != 0;
      const bool valid_hi = smem.valid[0][key0 + 8] != 0;
      float block_max[kHeadsPerThread];
      CUTE_UNROLL
      for (int h = 0; h < kHeadsPerThread; ++h) block_max[h] = -INFINITY;
      CUTE_UNROLL
      for (int i = 0; i < kSRegs; ++i) {
        const bool valid = (i % 4 < 2) ? valid_lo : valid_hi;
        const float sv = valid ? tSrS(i) : -INFINITY;
        tSrS(i) = sv;
        block_max[slot_of(i)] = fmaxf(block_max[slot_of(i)], sv);
      }
      // Over the warp's 16 tokens (lanes with the same lane % 4).
      bool exceeds = false;
      CUTE_UNROLL
      for (int h = 0; h < kHeadsPerThread; ++h) {
        block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 4));
        block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 8));
        block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 16));
        exceeds |= block_max[h] * p.scale_log2 > head_max[h] + kLazyMaxSlack;
      }
      // One vote over the warpgroup decides whether the running max moves;
      // only then do the 4 warps exchange their maxima through shared memory.
      // (head_max is the same in every warp: it only moves on exchanged values.)
      const bool move = device::named_barrier_or(kSmallBarMax, Cfg::kConsumerThreads, exceeds);
      // Every warp's Q K^T of the piece's last block is done: the next q may land.
      if (block + 1 == piece.to) load_next_q();

      float rescale[kHeadsPerThread];
      float max_used[kHeadsPerThread];
      bool any_rescale = false;
      if (move) {
        if (lane < 4) {
          CUTE_UNROLL
          for (int h = 0; h < kHeadsPerThread; ++h) smem.head_max[item & 1][warp][head_of_slot(h)] = block_max[h];
        }
        device::named_barrier_sync(kSmallBarMaxMoved, Cfg::kConsumerThreads);
        CUTE_UNROLL
        for (int h = 0; h < kHeadsPerThread; ++h) {
          const int head = head_of_slot(h);
          float block_m = -INFINITY;  // the block's max logit, not yet scaled
          CUTE_UNROLL
          for (int w = 0; w < 4; ++w) block_m = fmaxf(block_m, smem.head_max[item & 1][w][head]);
          const float m = fmaxf(head_max[h], block_m * p.scale_log2);
          max_used[h] = m == -INFINITY ? 0.f : m;
          rescale[h] = device::exp2_ftz(head_max[h] - max_used[h]);
          any_rescale |= rescale[h] != 1.f;
          head_max[h] = m;
          head_sum[h] *= rescale[h];
        }
      } else {
        CUTE_UNROLL
        for (int h = 0; h < kHeadsPerThread; ++h) {
          max_used[h] = head_max[h] == -INFINITY ? 0.f : head_max[h];
          rescale[h] = 1.f;
        }
      }
      CUTE_UNROLL
      for (int i = 0; i < kSRegs; ++i) {
        const float prob = device::exp2_ftz(fmaf(tSrS(i), p.scale_log2, -max_used[slot_of(i)]));
        tSrS(i) = prob;
        head_sum[slot_of(i)] += prob;
      }
      if (__any_sync(0xffffffffu, any_rescale)) {
        CUTE_UNROLL
        for (int i = 0; i < kORegs; ++i) tOrO(i) *= rescale[slot_of(i)];
      }
      // P^T (bf16): row = head, column = token, 128B-swizzled K-major.
      CUTE_UNROLL
      for (int i = 0; i < kSRegs; ++i) {
        const int key = key0 + ((i % 4 < 2) ? 0 : 8);
        const int head = head_of_slot(slot_of(i));
        const uint32_t offset = device::swizzle_128b(uint32_t(head * 128 + key * 2));
        *reinterpret_cast<Element*>(reinterpret_cast<char*>(smem.pt) + offset) = static_cast<Element>(tSrS(i));
      }
      device::fence_proxy_async_shared_cta();
      device::named_barrier_sync(kSmallBarPReady, Cfg::kConsumerThreads);

      // O^T += V^T P^T over the 8 m64 tiles of V dims, one batch per tile
      // group; each group is released as soon as its batch is done.
      Tensor tOrVt = thr_pv.partition_fragment_A(sVt(_, _, 0));
      device::gemm_async_m<0, Cfg::kGroup0Tiles>(mma_pv, tOrVt, tOrPt, tOrO);
      device::gemm_async_m<Cfg::kGroup0Tiles, 8>(mma_pv, tOrVt, tOrPt, tOrO);
      warpgroup_wait<1>();
      if (tid == 0) device::mbarrier_arrive(&smem.k_empty[0]);
      warpgroup_wait<0>();
      if (tid == 0) device::mbarrier_arrive(&smem.k_empty[1]);
    }

    // Per-head sums over the warp's tokens, then the 4 warps.
    float total[kHeadsPerThread];
    CUTE_UNROLL
    for (int h = 0; h < kHeadsPerThread; ++h) {
      float sum = head_sum[h];
      sum += __shfl_xor_sync(0xffffffffu, sum, 4);
      sum += __shfl_xor_sync(0xffffffffu, sum, 8);
      sum += __shfl_xor_sync(0xffffffffu, sum, 16);
      if (lane < 4) smem.head_sum[warp][head_of_slot(h)] = sum;
    }
    device::named_barrier_sync(kSmallBarSum, Cfg::kConsumerThreads);
    float inv[kHeadsPerThread];
    CUTE_UNROLL
    for (int h = 0; h < kHeadsPerThread; ++h) {
      const int head = head_of_slot(h);
      float sum = 0.f;
      CUTE_UNROLL
      for (int w = 0; w < 4; ++w) sum += smem.head_sum[w][head];
      total[h] = sum;
      const bool empty = sum == 0.f;
      float denominator = sum;
      if (!piece.split && p.attn_sink != nullptr && head < p.h_q) {
        denominator += exp2f(p.attn_sink[head] * 1.4426950408889634f - head_max[h]);
      }
      inv[h] = empty ? 0.f : 1.f / denominator;
    }
    // Everyone has read head_sum before the next piece overwrites it.
    device::named_barrier_sync(kSmallBarSum, Cfg::kConsumerThreads);

    // Epilogue: O^T element (dim, head) -> out[req, s, head, dim], one head
    // (one row pointer) at a time.
    const bool write_partial = piece.split && piece.slot >= 0;
    if (!piece.split || write_partial) {
      CUTE_UNROLL
      for (int h = 0; h < kHeadsPerThread; ++h) {
        const int head = head_of_slot(h);
        if (head >= p.h_q) continue;
        Element* out_row = static_cast<Element*>(p.out) + int64_t(piece.req) * p.stride_out_b +
                           int64_t(s) * p.stride_out_s + int64_t(head) * p.stride_out_h;
        float* partial_row =
            p.out_partial + ((int64_t(piece.slot) * p.s_q + s) * p.h_q + head) * Cfg::kDimV;
        CUTE_UNROLL
        for (int m_tile = 0; m_tile < 8; ++m_tile) {
          CUTE_UNROLL
          for (int half = 0; half < 2; ++half) {
            // Register of (m_tile, head slot h, row half): see slot_of.
            const int i = m_tile * kSRegs + 4 * (h / 2) + 2 * half + h % 2;
            const int dim = 64 * m_tile + key0 + 8 * half;
            const float v = tOrO(i) * inv[h];
            if (!piece.split) {
              out_row[dim] = static_cast<Element>(v);
            } else {
              partial_row[dim] = v;
            }
          }
        }
      }
      if (warp == 0 && lane < 4) {
        CUTE_UNROLL
        for (int h = 0; h < kHeadsPerThread; ++h) {
          const int head = head_of_slot(h);
          if (head >= p.h_q) continue;
          const float lse = total[h] == 0.f ? -INFINITY : (head_max[h] + log2f(total[h])) * 0.6931471805599453f;
          if (!piece.split) {
            p.lse[int64_t(piece.req) * p.stride_lse_b + int64_t(head) * p.stride_lse_h + s] = lse;
          } else {
            p.lse_partial[(int64_t(piece.slot) * p.s_q + s) * p.h_q + head] = lse;
          }
        }
      }
    }
  }
  device::grid_dependency_launch_dependents();
}

}  // namespace flashmla::kernels::sparse_decode
