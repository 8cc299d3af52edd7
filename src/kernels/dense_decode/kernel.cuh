// Dense MLA decode: one CTA per (worker, 64-row query tile, KV head): a
// producer warpgroup issues the KV TMA loads, a score and a value consumer
// warpgroup compute (consumer.cuh). With kMulticast, the two row tiles of a
// worker that read the same KV blocks form a 2-CTA cluster: each CTA loads
// alternate k-tiles of a block and multicasts them into both, which halves
// the L2 -> SM traffic that bounds 128 heads. See README.md.
#pragma once

#include <cstdint>

#include <cuda.h>

#include <cute/tensor.hpp>

#include "common/decode_schedule.h"
#include "device/cluster.cuh"
#include "device/mbarrier.cuh"
#include "device/pdl.cuh"
#include "device/trace.cuh"
#include "device/tma.cuh"
#include "device/warpgroup_registers.cuh"
#include "kernels/dense_decode/config.cuh"
#include "kernels/dense_decode/consumer.cuh"
#include "kernels/dense_decode/params.h"
#include "kernels/dense_decode/schedule.cuh"

namespace flashmla::kernels::dense_decode {

using namespace cute;

template <typename Cfg, bool kMulticast>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    dense_decode_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ CUtensorMap kv_map,
                        const Params p) {
  constexpr int kNumKTiles = Cfg::kNumKTiles;
  constexpr int kTileBytes = Cfg::kTileBytes;
  using SharedStorage = typename Cfg::SharedStorage;

  extern __shared__ __align__(1024) char smem_raw[];
  SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_raw);

  const int warp_group = threadIdx.x / 128;  // 0: producer, 1: scores, 2: values
  const int worker = blockIdx.x;
  const int m_block = blockIdx.y;
  const int kv_head = blockIdx.z;

  const int head_tile = m_block % p.head_tiles;
  const int token0 = (m_block / p.head_tiles) * p.tokens_per_tile;
  const int head0 = head_tile * Cfg::kBlockM;

  if (threadIdx.x == 0) {
    FLASHMLA_TRACE_STAMP(p.trace, device::kTraceEntry);
    device::prefetch_tensormap(&q_map);
    device::prefetch_tensormap(&kv_map);
    device::mbarrier_init(&smem.q_full, 1);
    for (int s = 0; s < Cfg::kStages; ++s) {
      device::mbarrier_init(&smem.k_full[s], 1);
      // Both consumer warpgroups of every CTA the stage is loaded into.
      device::mbarrier_init(&smem.k_empty[s], kMulticast ? 4 : 2);
    }
    device::fence_barrier_init();
  }
  // Lengths, block table, schedule and q may come from the kernel before.
  // No CTA returns before this wait: the scheduled combine launched after
  // this kernel reads the schedule before its own wait, relying on it
  // (kernels/combine/kernel.cuh).
  device::grid_dependency_wait();
  if constexpr (kMulticast) {
    // The peer's barriers are initialised before any load or arrive reaches them.
    device::cluster_arrive();
    device::cluster_wait();
  } else {
    __syncthreads();
  }
  if (threadIdx.x == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceReady);

  const ScheduleView schedule = schedule_view(const_cast<void*>(p.schedule), p.num_workers);
  const WorkerRange planned = schedule.workers[worker];
  // The schedule is the planner's output, but a buffer that was never
  // planned must still not send a worker outside the batch.
  const bool sane = planned.begin_req >= 0 && planned.begin_req <= planned.end_req && planned.end_req <= p.b &&
                    planned.begin_block >= 0 && planned.end_block >= 0;
  const WorkerRange range = sane ? planned : WorkerRange{p.b, 0, p.b, 0, 0, {0, 0, 0}};
  const int32_t* split_begin = schedule.split_begin;

  if (warp_group == 0) {
    // Producer: one thread walks the worker's blocks and keeps both stages
    // loading; a stage is refilled as soon as both consumers released it.
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kProducerRegisters>();
    if (threadIdx.x == 0) {
      // Both CTAs of a cluster walk the same blocks (same worker, same
      // lengths), so each stage's phase holds the same block in both.
      const uint32_t rank = kMulticast ? device::cluster_cta_rank() : 0u;
      // The KV cache is read once per step: its lines go first, so that
      // q, the block table and the split partials the combine reads right
      // after this grid stay in L2 (D15's combine: 11.2 -> 3.4 MB from DRAM).
      const uint64_t evict_first = device::l2_policy_evict_first();
      BlockCursor loader(range, p, split_begin);
      for (int32_t item = 0; loader.valid; ++item, loader.advance(p, split_begin)) {
        const int stage = item % Cfg::kStages;
        // The block-table read goes out before the wait for the stage, so
        // its latency hides behind the consumers' use of it.
        const int32_t page = live_page(p, loader.piece.req, loader.block, loader.len);
        if (item >= Cfg::kStages) {
          device::mbarrier_wait_parity(&smem.k_empty[stage], ((item / Cfg::kStages) - 1) & 1);
        }
        if (page >= 0) {
          device::mbarrier_arrive_expect_tx(&smem.k_full[stage], kNumKTiles * kTileBytes);
          char* dst = reinterpret_cast<char*>(smem.k) + stage * (kNumKTiles * kTileBytes);
          // k_full expects the whole block: in a cluster, the peer's
          // multicast tiles complete here too (possibly before this expect,
          // within the same phase: the peer waited for this CTA's release).
          for (int t = 0; t < kNumKTiles; ++t) {
            if constexpr (kMulticast) {
              if (uint32_t(t % 2) == rank) {
                device::tma_load_4d_multicast(dst + t * kTileBytes, &smem.k_full[stage], &kv_map, t * 64, kv_head, 0,
                                              page, uint16_t(0x3), evict_first);
              }
            } else {
              device::tma_load_4d(dst + t * kTileBytes, &smem.k_full[stage], &kv_map, t * 64, kv_head, 0, page,
                                  evict_first);
            }
          }
        } else {
          device::mbarrier_arrive(&smem.k_full[stage]);  // nothing to load: complete the phase
        }
      }
    }
    if (threadIdx.x == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceLastLoadIssued);
    device::grid_dependency_launch_dependents();
    if constexpr (kMulticast) {
      // Stay until the peer is done loading into and arriving on this CTA.
      __syncwarp();
      device::cluster_arrive();
      device::cluster_wait();
    }
    return;
  }
  if (warp_group == 1) {
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kScoreRegisters>();
    consume_scores<Cfg, kMulticast>(&q_map, p, smem, range, split_begin, head0, kv_head, token0);
  } else {
    device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kValueRegisters>();
    consume_values<Cfg, kMulticast>(p, smem, range, split_begin, head0, kv_head, token0);
  }
  if (threadIdx.x % 128 == 0) {
    FLASHMLA_TRACE_STAMP(p.trace, warp_group == 1 ? device::kTraceScoresDone : device::kTraceValuesDone);
  }
  // Lets the combine kernel launch while this grid drains.
  device::grid_dependency_launch_dependents();
  if constexpr (kMulticast) {
    device::cluster_arrive();
    device::cluster_wait();
  }
  if (threadIdx.x == 128) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceExit);
}

}  // namespace flashmla::kernels::dense_decode
