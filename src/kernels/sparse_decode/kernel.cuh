// Sparse FP8 decode: one CTA per (worker, query token, group of 64 heads).
// A producer warpgroup gathers the selected tokens of each 64-index block,
// dequantizes them into a bf16 stage; two consumer warpgroups compute in
// lockstep as in dense decode. See README.md.
#pragma once

#include <cstdint>

#include <cuda.h>

#include <cute/tensor.hpp>
#include <cutlass/arch/reg_reconfig.h>

#include "common/decode_schedule.h"
#include "device/cute_gemm.cuh"
#include "device/cluster.cuh"
#include "device/fence.cuh"
#include "device/mbarrier.cuh"
#include "device/named_barrier.cuh"
#include "device/pdl.cuh"
#include "device/swizzle.h"
#include "device/tma.cuh"
#include "device/wgmma_layout.h"
#include "kernels/sparse_decode/config.cuh"
#include "kernels/sparse_decode/params.h"
#include "kernels/sparse_decode/producer.cuh"
#include "kernels/sparse_decode/schedule.cuh"

namespace flashmla::kernels::sparse_decode {

using namespace cute;

// Named barrier ids (0 is __syncthreads), each over both consumer warpgroups.
enum : uint32_t {
  kBarRowMax = 1,  // both row maxima of a block are published; both P V of the previous block are done
  kBarPReady = 2,  // P of the block is in shared memory
  kBarRowSum = 3,  // both row sums of a piece are published
  kBarStored = 4,  // the producer warpgroup's stores of a block are done (crossover)
};

// The producer warpgroup: every thread walks the worker's blocks; thread t
// gathers tokens A = t / 4 and B = t / 4 + 32 of each block (lane quarter
// t % 4). The two tokens are staggered: after storing A of block n the
// thread issues A's loads for block n + 1, then stores B of block n and
// issues B's loads, so each token's load latency overlaps the other token's
// dequantization and the stage wait (at most two tokens' raw bytes are live,
// as without staggering). Indices are loaded two blocks ahead, so no load
// waits on an index. No L2 prefetch of later blocks' tokens: measured on S01
// it cost 10% (403 vs 365 us at d885bcd; the prefetch issue loop competes
// with the dequantization for the producer's issue slots).
template <typename Cfg>
__device__ __forceinline__ void produce(const CUtensorMap* q_map, const Params& p, typename Cfg::SharedStorage& smem,
                                       const WorkerRange& range, const int32_t* split_begin, int32_t s,
                                       int32_t head0, int32_t q_box_heads) {
  constexpr KVFormat kFormat = Cfg::kFormat;
  const int tid = threadIdx.x;  // 0..127
  const int q = tid % 4;
  const int tok[2] = {tid / 4, tid / 4 + 32};
  const int row_a[1] = {tok[0]};
  const int row_b[1] = {tok[1]};

  BlockCursor fetch(range, p, split_begin);
  BlockSlot<2> cur = fetch_slot<2>(p, fetch, split_begin, s, tok);
  BlockSlot<2> next = fetch_slot<2>(p, fetch, split_begin, s, tok);
  // The current block's raw bytes of tokens A and B, and whether each is a
  // selected key (an unselected one loads nothing and reads as zeros).
  RawToken<kFormat> raw_a[1], raw_b[1];
  TokenRef ref = resolve_slot(p, cur, 0);
  bool valid_a = ref.page != nullptr;
  load_token<kFormat>(ref, q, raw_a[0]);
  ref = resolve_slot(p, cur, 1);
  bool valid_b = ref.page != nullptr;
  load_token<kFormat>(ref, q, raw_b[0]);

  int32_t q_loads = 0;
  for (int32_t item = 0; (cur.flags & kSlotLive) != 0; ++item) {
    const int stage = item % Cfg::kStages;
    if (tid == 0 && (cur.flags & kSlotFirst) != 0) {
      load_piece_q<Cfg>(q_map, smem, Cfg::kTileBytes, q_loads, head0, s, cur.req, q_box_heads);
    }
    const BlockSlot<2> after = fetch_slot<2>(p, fetch, split_begin, s, tok);

    if (item >= Cfg::kStages) {
      device::mbarrier_wait_parity(&smem.k_empty[stage], ((item / Cfg::kStages) - 1) & 1);
    }
    char* stage_bytes = reinterpret_cast<char*>(smem.k) + stage * (Cfg::kNumKTiles * Cfg::kTileBytes);
    if (q == 0) {
      smem.valid[stage][tok[0]] = valid_a;
      smem.valid[stage][tok[1]] = valid_b;
    }
    store_tokens<Cfg, 1>(raw_a, q, row_a, stage_bytes);
    ref = resolve_slot(p, next, 0);  // past the worker's last block: nothing is loaded
    valid_a = ref.page != nullptr;
    load_token<kFormat>(ref, q, raw_a[0]);
    store_tokens<Cfg, 1>(raw_b, q, row_b, stage_bytes);
    ref = resolve_slot(p, next, 1);
    valid_b = ref.page != nullptr;
    load_token<kFormat>(ref, q, raw_b[0]);
    device::fence_proxy_async_shared_cta();  // the stores above are read by wgmma
    device::mbarrier_arrive(&smem.k_full[stage]);
    cur = next;
    next = after;
  }
}

// The producer of the crossover (h_q 65..128: the two head tiles of a query
// token form a 2-CTA cluster and read the same tokens): CTA rank r gathers
// and dequantizes only token t / 4 + 32 r of each block, halving the per-CTA
// gather and dequantization (FlashMLA's sparse decode does the same). It
// stores its half into its own stage; one thread then has the TMA engine copy
// that half into the peer's stage (one bulk copy per 64-row tile, completing
// transaction bytes on the peer's k_full): 18 st.async per thread measured 8%
// slower, and no cluster-scope fence or acquire is needed in the loop (those
// compile to MEMBAR.ALL.GPU and an L1 invalidation). With one token per
// thread the next block's raw bytes fit in registers beside the current
// block's, so they load while this block is dequantized. Each CTA writes the
// validity of all 64 tokens itself (it loads the peer token's index too).
template <typename Cfg>
__device__ __forceinline__ void produce_crossover(const CUtensorMap* q_map, const Params& p,
                                                  typename Cfg::SharedStorage& smem, const WorkerRange& range,
                                                  const int32_t* split_begin, int32_t s, int32_t head0,
                                                  int32_t q_box_heads) {
  constexpr KVFormat kFormat = Cfg::kFormat;
  constexpr uint32_t kStageBytes = Cfg::kNumKTiles * Cfg::kTileBytes;
  const int tid = threadIdx.x;  // 0..127
  const int q = tid % 4;
  const uint32_t rank = device::cluster_cta_rank();
  const uint32_t peer = rank ^ 1u;
  // tok[0]: the token this thread gathers; tok[1]: the peer's token of the
  // same lane group, whose index is loaded only for its validity byte.
  const int tok[2] = {tid / 4 + 32 * int(rank), tid / 4 + 32 * int(peer)};
  const int own[1] = {tok[0]};
  const uint32_t peer_k = device::smem_peer_address(smem.k, peer);
  const uint32_t peer_full = device::smem_peer_address(&smem.k_full[0], peer);

  BlockCursor fetch(range, p, split_begin);
  BlockSlot<2> cur = fetch_slot<2>(p, fetch, split_begin, s, tok);
  BlockSlot<2> next = fetch_slot<2>(p, fetch, split_begin, s, tok);
  // Two raw buffers, swapped by unrolling the loop twice (a copy would cost
  // 44 moves per block).
  RawToken<kFormat> raw_a[1];
  RawToken<kFormat> raw_b[1];
  load_token<kFormat>(resolve_slot(p, cur, 0), q, raw_a[0]);

  int32_t q_loads = 0;
  int32_t item = 0;
  auto step = [&](RawToken<kFormat>(&now)[1], RawToken<kFormat>(&later)[1]) {
    const int stage = item % Cfg::kStages;
    if (tid == 0 && (cur.flags & kSlotFirst) != 0) {
      load_piece_q<Cfg>(q_map, smem, Cfg::kTileBytes, q_loads, head0, s, cur.req, q_box_heads);
    }
    // The next block's token loads now, into the other buffer.
    load_token<kFormat>(resolve_slot(p, next, 0), q, later[0]);  // past the last block: nothing is loaded
    const BlockSlot<2> after = fetch_slot<2>(p, fetch, split_begin, s, tok);

    if (item >= Cfg::kStages) {
      // Both CTAs' consumers have released this stage (4 arrivals: the
      // peer's come from the other CTA), so both copies may be refilled.
      device::mbarrier_wait_parity(&smem.k_empty[stage], ((item / Cfg::kStages) - 1) & 1);
    }
    char* stage_bytes = reinterpret_cast<char*>(smem.k) + stage * kStageBytes;
    const uint32_t peer_stage = peer_k + uint32_t(stage) * kStageBytes;
    const uint32_t peer_bar = peer_full + uint32_t(stage) * uint32_t(sizeof(uint64_t));
    if (q == 0) {
      smem.valid[stage][tok[0]] = slot_selects(p, cur, 0);
      smem.valid[stage][tok[1]] = slot_selects(p, cur, 1);
    }
    store_tokens<Cfg, 1>(now, q, own, stage_bytes);
    // The stores above are read by wgmma and by the bulk copy to the peer.
    device::fence_proxy_async_shared_cta();
    device::named_barrier_sync(kBarStored, Cfg::kProducerThreads);
    if (tid == 0) {
      // This CTA's 32 rows of every 64-row tile are one contiguous 4 KiB
      // (the 128-byte swizzle permutes within 1 KiB): the TMA engine copies
      // them into the same place in the peer's stage, completing its k_full.
      CUTE_UNROLL
      for (int t = 0; t < Cfg::kNumKTiles; ++t) {
        const uint32_t offset = uint32_t(t * Cfg::kTileBytes) + rank * 32u * 128u;
        device::bulk_copy_to_peer(peer_stage + offset, stage_bytes + offset, 32u * 128u, peer_bar);
      }
      // The peer's half of this stage: 32 tokens of d_qk bf16.
      device::mbarrier_arrive_expect_tx(&smem.k_full[stage], 32u * Cfg::kDimQK * 2u);
    } else {
      device::mbarrier_arrive(&smem.k_full[stage]);
    }
    cur = next;
    next = after;
    ++item;
  };
  while ((cur.flags & kSlotLive) != 0) {
    step(raw_a, raw_b);
    if ((cur.flags & kSlotLive) == 0) break;
    step(raw_b, raw_a);
  }
}

template <typename Cfg, bool kCrossover>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    sparse_decode_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ Params p) {
  using Element = typename Cfg::Element;
  constexpr int kBlockM = Cfg::kBlockM;
  constexpr int kBlockN = Cfg::kBlockN;
  constexpr int kHalfN = Cfg::kHalfN;
  constexpr int kHalfV = Cfg::kHalfV;
  using SharedStorage = typename Cfg::SharedStorage;

  extern __shared__ __align__(1024) char smem_raw[];
  SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_raw);

  const int warp_group = threadIdx.x / 128;  // 0: producer, 1 and 2: consumers
  const int worker = blockIdx.x;
  const int32_t s = blockIdx.y / p.head_tiles;  // query token
  const int32_t head0 = (blockIdx.y % p.head_tiles) * kBlockM;
  // Every q box has min(h_q, 64) rows (heads past h_q in the last tile are
  // out of bounds: TMA writes zeros and still counts their bytes).
  const int32_t q_box_heads = p.h_q < kBlockM ? p.h_q : kBlockM;

  if (threadIdx.x == 0) {
    device::prefetch_tensormap(&q_map);
    device::mbarrier_init(&smem.q_full, 1);
    device::mbarrier_init(&smem.q_empty, 2);  // one arrival per consumer warpgroup
    // With the crossover a stage is full when this CTA's producers have
    // arrived and the peer's bulk-copied bytes have landed, and empty when both
    // CTAs' consumers have released it.
    for (int st = 0; st < Cfg::kStages; ++st) {
      device::mbarrier_init(&smem.k_full[st], Cfg::kProducerThreads);
      device::mbarrier_init(&smem.k_empty[st], kCrossover ? 4 : 2);
    }
    device::fence_barrier_init();
  }
  // Lengths, indices, schedule and q may come from the kernel before.
  device::grid_dependency_wait();
  if constexpr (kCrossover) {
    // The peer's barriers are initialised before anything reaches them.
    device::cluster_arrive();
    device::cluster_wait();
  } else {
    __syncthreads();
  }

  const ScheduleView schedule = schedule_view(const_cast<void*>(p.schedule), p.num_workers);
  const WorkerRange planned = schedule.workers[worker];
  const bool sane = planned.begin_req >= 0 && planned.begin_req <= planned.end_req && planned.end_req <= p.b &&
                    planned.begin_block >= 0 && planned.end_block >= 0;
  const WorkerRange range = sane ? planned : WorkerRange{p.b, 0, p.b, 0, 0, {0, 0, 0}};
  const int32_t* split_begin = schedule.split_begin;

  if (warp_group == 0) {
    cutlass::arch::warpgroup_reg_dealloc<Cfg::kProducerRegisters>();
    if constexpr (kCrossover) {
      produce_crossover<Cfg>(&q_map, p, smem, range, split_begin, s, head0, q_box_heads);
    } else {
      produce<Cfg>(&q_map, p, smem, range, split_begin, s, head0, q_box_heads);
    }
    device::grid_dependency_launch_dependents();
    if constexpr (kCrossover) {
      // Stay until the peer is done writing into and arriving on this CTA.
      __syncwarp();
      device::cluster_arrive();
      device::cluster_wait();
    }
    return;
  }
  cutlass::arch::warpgroup_reg_alloc<Cfg::kConsumerRegisters>();

  const int tid = threadIdx.x - 128;  // 0..255 over the consumers
  const int wg = tid / 128;           // which half of the keys (QK) and of V's dims (PV)
  const int tid_wg = tid % 128;
  const int lane = tid % 32;

  Tensor sQ = make_tensor(make_smem_ptr(smem.q), typename Cfg::SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutK{});
  Tensor sVt = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutVt{});
  Tensor sP = make_tensor(make_smem_ptr(smem.p), typename Cfg::SmemLayoutP{});

  typename Cfg::TiledMmaQK mma_qk;
  typename Cfg::TiledMmaPV mma_pv;
  auto thr_qk = mma_qk.get_thread_slice(tid_wg);
  auto thr_pv = mma_pv.get_thread_slice(tid_wg);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);
  Tensor tOrP = thr_pv.partition_fragment_A(sP);
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<Int<kBlockM>, Int<kHalfN>>{});  // 16 fp32
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<Int<kBlockM>, Int<kHalfV>>{});  // 128 fp32
  static_assert(decltype(size(tSrS))::value == 16 && decltype(size(tOrO))::value == 128, "fragment sizes");

  // The two query rows (heads) this thread holds in every accumulator.
  int row_in_tile[2];
  int row_head[2];  // query head, or -1 when the row is past h_q
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int r = device::wgmma_accumulator_coord(tid_wg, 2 * h).row;
    row_in_tile[h] = r;
    row_head[h] = head0 + r < p.h_q ? head0 + r : -1;
  }

  int32_t item = 0;
  int32_t q_loads = 0;
  int32_t sums = 0;
  PieceCursor pieces(range);
  Piece piece;
  while (pieces.next(p, split_begin, piece)) {
    float row_max[2] = {-INFINITY, -INFINITY};  // base 2, shared by both warpgroups
    float row_sum[2] = {0.f, 0.f};              // this thread's columns only
    clear(tOrO);

    if (piece.to > piece.from) {
      device::mbarrier_wait_parity(&smem.q_full, q_loads & 1);
      ++q_loads;
    }
    for (int32_t block = piece.from; block < piece.to; ++block, ++item) {
      const int stage = item % Cfg::kStages;
      device::mbarrier_wait_parity(&smem.k_full[stage], (item / Cfg::kStages) & 1);

      // S = Q K_half^T for tokens [32 wg, 32 wg + 32) of the block.
      Tensor sKw = local_tile(sK(_, _, stage), Shape<Int<kHalfN>, Int<Cfg::kDimQK>>{}, make_coord(wg, _0{}));
      Tensor tSrK = thr_qk.partition_fragment_B(sKw);
      device::gemm_ss(mma_qk, tSrQ, tSrK, tSrS, /*zero_init=*/true);
      warpgroup_wait<0>();

      // Mask by selection: an unselected token's logit is -inf.
      float block_max[2] = {-INFINITY, -INFINITY};
      CUTE_UNROLL
      for (int i = 0; i < 16; ++i) {
        const int h = (i / 2) % 2;
        const int key = wg * kHalfN + device::wgmma_accumulator_coord(tid_wg, i).col;
        const float sv = smem.valid[stage][key] ? tSrS(i) * p.scale_log2 : -INFINITY;
        tSrS(i) = sv;
        block_max[h] = fmaxf(block_max[h], sv);
      }
      CUTE_UNROLL
      for (int h = 0; h < 2; ++h) {
        block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 1));
        block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 2));
        if (lane % 4 == 0) smem.row_max[item & 1][wg][row_in_tile[h]] = block_max[h];
      }
      device::named_barrier_sync(kBarRowMax, Cfg::kConsumerThreads);

      float rescale[2];
      float max_used[2];
      CUTE_UNROLL
      for (int h = 0; h < 2; ++h) {
        const float other = smem.row_max[item & 1][1 - wg][row_in_tile[h]];
        const float new_max = fmaxf(row_max[h], fmaxf(block_max[h], other));
        // A row with no selected key yet keeps max -inf: exponentiate against
        // 0 instead, so exp2(-inf - -inf) never makes a NaN.
        max_used[h] = new_max == -INFINITY ? 0.f : new_max;
        rescale[h] = exp2f(row_max[h] - max_used[h]);
        row_max[h] = new_max;
        row_sum[h] *= rescale[h];
      }
      CUTE_UNROLL
      for (int i = 0; i < 16; ++i) {
        const int h = (i / 2) % 2;
        const float prob = exp2f(tSrS(i) - max_used[h]);
        tSrS(i) = prob;
        row_sum[h] += prob;
      }
      if (__any_sync(0xffffffffu, rescale[0] != 1.f || rescale[1] != 1.f)) {
        CUTE_UNROLL
        for (int i = 0; i < 128; ++i) tOrO(i) *= rescale[(i / 2) % 2];
      }
      // P (rounded to bf16) for both warpgroups' P V.
      CUTE_UNROLL
      for (int i = 0; i < 16; i += 2) {
        const device::FragmentCoord c = device::wgmma_accumulator_coord(tid_wg, i);
        Element pair[2] = {static_cast<Element>(tSrS(i)), static_cast<Element>(tSrS(i + 1))};
        const uint32_t offset = device::swizzle_128b(uint32_t(c.row * 128 + (wg * kHalfN + c.col) * 2));
        *reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(smem.p) + offset) = *reinterpret_cast<uint32_t*>(pair);
      }
      device::fence_proxy_async_shared_cta();
      device::named_barrier_sync(kBarPReady, Cfg::kConsumerThreads);

      // O_half += P V_half.
      Tensor sVtw = local_tile(sVt(_, _, stage), Shape<Int<kHalfV>, Int<kBlockN>>{}, make_coord(wg, _0{}));
      Tensor tOrV = thr_pv.partition_fragment_B(sVtw);
      device::gemm_ss(mma_pv, tOrP, tOrV, tOrO, /*zero_init=*/false);
      warpgroup_wait<0>();
      if (tid_wg == 0) {
        device::mbarrier_arrive(&smem.k_empty[stage]);
        // The peer's producer refills this CTA's stage too.
        if constexpr (kCrossover) device::mbarrier_arrive_cluster(&smem.k_empty[stage], device::cluster_cta_rank() ^ 1u);
      }
    }
    if (piece.to > piece.from && tid_wg == 0) device::mbarrier_arrive(&smem.q_empty);

    // Row sums: the quad's columns, then the other warpgroup's half.
    float total[2];
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) {
      float sum = row_sum[h];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      if (lane % 4 == 0) smem.row_sum[sums & 1][wg][row_in_tile[h]] = sum;
      total[h] = sum;
    }
    device::named_barrier_sync(kBarRowSum, Cfg::kConsumerThreads);
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) total[h] += smem.row_sum[sums & 1][1 - wg][row_in_tile[h]];
    ++sums;

    // Epilogue: O / (L + sink term), lse = ln(L) + max (base 2 max, hence the
    // ln 2). The sink never enters lse; a split request gets it in the
    // combine instead.
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) {
      if (row_head[h] < 0) continue;
      const int head = row_head[h];
      // Only L == 0 is empty (out exactly +0, lse -inf); a NaN L stays NaN.
      const bool empty = total[h] == 0.f;
      float denominator = total[h];
      if (!piece.split && p.attn_sink != nullptr) {
        // exp(sink - M) in base 2; +inf makes out 0, -inf adds nothing.
        denominator += exp2f(p.attn_sink[head] * 1.4426950408889634f - row_max[h]);
      }
      const float inv = empty ? 0.f : 1.f / denominator;
      const float lse = empty ? -INFINITY : (row_max[h] + log2f(total[h])) * 0.6931471805599453f;
      const int col0 = wg * kHalfV + 2 * (lane % 4);
      if (!piece.split) {
        Element* out_row = static_cast<Element*>(p.out) + int64_t(piece.req) * p.stride_out_b +
                           int64_t(s) * p.stride_out_s + int64_t(head) * p.stride_out_h + col0;
        CUTE_UNROLL
        for (int j = 0; j < kHalfV / 8; ++j) {
          Element pair[2] = {static_cast<Element>(tOrO(4 * j + 2 * h) * inv),
                             static_cast<Element>(tOrO(4 * j + 2 * h + 1) * inv)};
          *reinterpret_cast<uint32_t*>(out_row + 8 * j) = *reinterpret_cast<uint32_t*>(pair);
        }
        if (wg == 0 && lane % 4 == 0) {
          p.lse[int64_t(piece.req) * p.stride_lse_b + int64_t(head) * p.stride_lse_h + s] = lse;
        }
      } else if (piece.slot >= 0) {
        const int64_t row = (int64_t(piece.slot) * p.s_q + s) * p.h_q + head;
        float* out_row = p.out_partial + row * Cfg::kDimV + col0;
        CUTE_UNROLL
        for (int j = 0; j < kHalfV / 8; ++j) {
          *reinterpret_cast<float2*>(out_row + 8 * j) =
              make_float2(tOrO(4 * j + 2 * h) * inv, tOrO(4 * j + 2 * h + 1) * inv);
        }
        if (wg == 0 && lane % 4 == 0) p.lse_partial[row] = lse;
      }
    }
  }
  device::grid_dependency_launch_dependents();
  if constexpr (kCrossover) {
    device::cluster_arrive();
    device::cluster_wait();
  }
}

}  // namespace flashmla::kernels::sparse_decode
