// Sparse FP8 decode: one CTA per (worker, query token, group of 64 heads).
// A producer warpgroup gathers the selected tokens of each 64-index block,
// dequantizes them into a bf16 stage; a score and a value consumer warpgroup
// compute (consumer.cuh). See README.md.
#pragma once

#include <cstdint>

#include <cuda.h>

#include <cute/tensor.hpp>

#include "common/decode_schedule.h"
#include "device/cluster.cuh"
#include "device/cute_gemm.cuh"
#include "device/fence.cuh"
#include "device/mbarrier.cuh"
#include "device/named_barrier.cuh"
#include "device/pdl.cuh"
#include "device/swizzle.h"
#include "device/tma.cuh"
#include "device/warpgroup_registers.cuh"
#include "device/wgmma_layout.h"
#include "kernels/sparse_decode/config.cuh"
#include "kernels/sparse_decode/consumer.cuh"
#include "kernels/sparse_decode/params.h"
#include "kernels/sparse_decode/producer.cuh"
#include "kernels/sparse_decode/schedule.cuh"

namespace flashmla::kernels::sparse_decode {

using namespace cute;

// Named barrier id of the producer warpgroup (the consumers' are in consumer.cuh).
enum : uint32_t {
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
__device__ __forceinline__ void produce(const Params& p, typename Cfg::SharedStorage& smem, const WorkerRange& range,
                                       const int32_t* split_begin, int32_t s) {
  constexpr KVFormat kFormat = Cfg::kFormat;
  const int tid = threadIdx.x;  // 0..127
  const int q = tid % 4;
  const int tok[2] = {tid / 4, tid / 4 + 32};
  const int row_a[1] = {tok[0]};
  const int row_b[1] = {tok[1]};

  BlockCursor fetch(range, p, split_begin);
  BlockSlot<2> cur = fetch_slot<2, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);
  BlockSlot<2> next = fetch_slot<2, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);
  // The current block's raw bytes of tokens A and B, and whether each is a
  // selected key (an unselected one loads nothing and reads as zeros).
  RawToken<kFormat> raw_a[1], raw_b[1];
  TokenRef ref = resolve_slot(p, cur, 0);
  bool valid_a = ref.page != nullptr;
  load_token<kFormat>(ref, q, raw_a[0]);
  ref = resolve_slot(p, cur, 1);
  bool valid_b = ref.page != nullptr;
  load_token<kFormat>(ref, q, raw_b[0]);

  for (int32_t item = 0; (cur.flags & kSlotLive) != 0; ++item) {
    const int stage = item % Cfg::kStages;
    const BlockSlot<2> after = fetch_slot<2, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);

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
__device__ __forceinline__ void produce_crossover(const Params& p, typename Cfg::SharedStorage& smem,
                                                  const WorkerRange& range, const int32_t* split_begin, int32_t s) {
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
  BlockSlot<2> cur = fetch_slot<2, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);
  BlockSlot<2> next = fetch_slot<2, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);
  // Two raw buffers, swapped by unrolling the loop twice (a copy would cost
  // 44 moves per block).
  RawToken<kFormat> raw_a[1];
  RawToken<kFormat> raw_b[1];
  load_token<kFormat>(resolve_slot(p, cur, 0), q, raw_a[0]);

  int32_t item = 0;
  auto step = [&](RawToken<kFormat>(&now)[1], RawToken<kFormat>(&later)[1]) {
    const int stage = item % Cfg::kStages;
    // The next block's token loads now, into the other buffer.
    load_token<kFormat>(resolve_slot(p, next, 0), q, later[0]);  // past the last block: nothing is loaded
    const BlockSlot<2> after = fetch_slot<2, Cfg::kPagedPositions>(p, fetch, split_begin, s, tok);

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
  constexpr int kBlockM = Cfg::kBlockM;
  using SharedStorage = typename Cfg::SharedStorage;

  extern __shared__ __align__(1024) char smem_raw[];
  SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_raw);

  const int warp_group = threadIdx.x / 128;  // 0: producer, 1 and 2: consumers
  const int worker = blockIdx.x;
  // The tile: heads [head0, head0 + heads_per_tile) of query tokens
  // [token0, token0 + tokens_per_tile): one token, except in dense decode
  // over a V32 cache with fewer than 64 heads (params.h).
  const int32_t head0 = (blockIdx.y % p.head_tiles) * kBlockM;
  const int32_t token0 = (blockIdx.y / p.head_tiles) * p.tokens_per_tile;
  const int32_t last_token = min(token0 + p.tokens_per_tile, p.s_q) - 1;
  // Every q box has min(h_q, 64) rows per token, tokens_per_tile tokens
  // (heads past h_q in the last tile, tokens past s_q, are out of bounds:
  // TMA writes zeros and still counts their bytes).
  const int32_t q_box_rows = (p.h_q < kBlockM ? p.h_q : kBlockM) * p.tokens_per_tile;

  if (threadIdx.x == 0) {
    device::prefetch_tensormap(&q_map);
    device::mbarrier_init(&smem.q_full, 1);
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
  // No CTA returns before this wait: the scheduled combine launched after
  // this kernel reads the schedule before its own wait, relying on it
  // (kernels/combine/kernel.cuh).
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
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kProducerRegisters>();
    if constexpr (kCrossover) {
      produce_crossover<Cfg>(p, smem, range, split_begin, last_token);
    } else {
      // A packed tile's tokens see nested key ranges: the producer selects
      // the last token's, the score warpgroup masks the earlier rows.
      produce<Cfg>(p, smem, range, split_begin, last_token);
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
  if (warp_group == 1) {
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kScoreRegisters>();
    consume_scores<Cfg, kCrossover>(&q_map, p, smem, range, split_begin, token0, head0, q_box_rows);
  } else {
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kValueRegisters>();  // a .dec: below the launch's 168
    consume_values<Cfg, kCrossover>(p, smem, range, split_begin, token0, head0);
  }
  device::grid_dependency_launch_dependents();
  if constexpr (kCrossover) {
    device::cluster_arrive();
    device::cluster_wait();
  }
}

}  // namespace flashmla::kernels::sparse_decode
