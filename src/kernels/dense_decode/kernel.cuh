// Dense MLA decode: one CTA per (worker, 64-row query tile, KV head): a
// producer warpgroup issues the TMA loads, two consumer warpgroups compute in
// lockstep. See README.md.
#pragma once

#include <cstdint>

#include <cuda.h>

#include <cute/tensor.hpp>

#include "common/decode_schedule.h"
#include "device/cute_gemm.cuh"
#include "device/fence.cuh"
#include "device/mbarrier.cuh"
#include "device/named_barrier.cuh"
#include "device/pdl.cuh"
#include "device/swizzle.h"
#include "device/tma.cuh"
#include "device/warpgroup_registers.cuh"
#include "device/wgmma_layout.h"
#include "kernels/dense_decode/config.cuh"
#include "kernels/dense_decode/params.h"

namespace flashmla::kernels::dense_decode {

using namespace cute;

// Named barrier ids (0 is __syncthreads), each over both consumer warpgroups.
enum : uint32_t {
  kBarRowMax = 1,  // both row maxima of a block are published; both P V of the previous block are done
  kBarPReady = 2,  // P of the block is in shared memory (and the V tail zeroed)
  kBarRowSum = 3,  // both row sums of a piece are published
};

// One request's share of a worker: blocks [from, to) of request `req`.
struct Piece {
  int32_t req;
  int32_t from;
  int32_t to;
  bool split;    // another worker has a piece of the request too
  int32_t slot;  // partial-result slot when split
};

// Keys of request `req` that exist: cache_seqlens clamped to what the block
// table can address. Garbage lengths are masked, never trusted.
__device__ __forceinline__ int32_t request_length(const Params& p, int32_t req) {
  const int32_t len = p.cache_seqlens[req];
  const int64_t cap = int64_t(p.max_blocks_per_seq) * kBlockTokens;
  return len <= 0 ? 0 : (int64_t(len) > cap ? int32_t(cap) : len);
}

// Page of block `block` of request `req`, or -1 when the block holds no
// key or the block table names a page outside [0, num_blocks): such a block
// is neither loaded nor computed.
__device__ __forceinline__ int32_t live_page(const Params& p, int32_t req, int32_t block, int32_t len) {
  if (block >= work_blocks(len)) return -1;
  const int32_t page = p.block_table[int64_t(req) * p.stride_block_table_b + block];
  return (page >= 0 && page < p.num_blocks) ? page : -1;
}

// Walks the pieces of a worker's range in order.
struct PieceCursor {
  int32_t req;
  int32_t first_req;
  int32_t first_block;
  int32_t first_partial;
  int32_t end_req;
  int32_t end_block;

  __device__ explicit PieceCursor(const WorkerRange& range)
      : req(range.begin_req),
        first_req(range.begin_req),
        first_block(range.begin_block),
        first_partial(range.first_partial),
        end_req(range.end_req),
        end_block(range.end_block) {}

  __device__ bool next(const Params& p, const int32_t* split_begin, Piece& piece) {
    if (req >= p.b || req > end_req || (req == end_req && end_block == 0)) return false;
    const int32_t from = req == first_req ? first_block : 0;
    if (req == end_req && from >= end_block) return false;  // an empty range
    // Blocks past the (clamped) length hold no key: a garbage length planned
    // as huge costs no iterations here (the piece may become empty).
    const int32_t live_blocks = work_blocks(request_length(p, req));
    const int32_t to = req == end_req && end_block < live_blocks ? end_block : live_blocks;
    piece.req = req;
    piece.from = from;
    piece.to = to > from ? to : from;
    piece.split = split_begin[req + 1] - split_begin[req] > 1;
    piece.slot = req == first_req ? first_partial : split_begin[req];
    // A slot outside the workspace (an unplanned schedule) is never written.
    if (piece.split && (piece.slot < 0 || piece.slot >= p.num_slots)) piece.slot = -1;
    ++req;
    return true;
  }
};

// Walks the blocks of a worker's range (pieces without blocks skipped): the
// order in which the producer loads them.
struct BlockCursor {
  PieceCursor pieces;
  Piece piece;
  int32_t block;
  int32_t len;
  bool valid;

  __device__ BlockCursor(const WorkerRange& range, const Params& p, const int32_t* split_begin)
      : pieces(range) {
    valid = next_piece(p, split_begin);
  }
  __device__ bool next_piece(const Params& p, const int32_t* split_begin) {
    while (pieces.next(p, split_begin, piece)) {
      if (piece.to > piece.from) {
        block = piece.from;
        len = request_length(p, piece.req);
        return true;
      }
    }
    return false;
  }
  __device__ void advance(const Params& p, const int32_t* split_begin) {
    if (++block >= piece.to) valid = next_piece(p, split_begin);
  }
};

template <typename Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    dense_decode_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ CUtensorMap kv_map,
                        const Params p) {
  using Element = typename Cfg::Element;
  constexpr int kBlockM = Cfg::kBlockM;
  constexpr int kBlockN = Cfg::kBlockN;
  constexpr int kHalfN = Cfg::kHalfN;
  constexpr int kHalfV = Cfg::kHalfV;
  constexpr int kNumKTiles = Cfg::kNumKTiles;
  constexpr int kTileBytes = Cfg::kTileBytes;
  using SharedStorage = typename Cfg::SharedStorage;

  extern __shared__ __align__(1024) char smem_raw[];
  SharedStorage& smem = *reinterpret_cast<SharedStorage*>(smem_raw);

  const int warp_group = threadIdx.x / 128;  // 0: producer, 1 and 2: consumers
  const int worker = blockIdx.x;
  const int m_block = blockIdx.y;
  const int kv_head = blockIdx.z;

  const int head_tile = m_block % p.head_tiles;
  const int token0 = (m_block / p.head_tiles) * p.tokens_per_tile;
  const int head0 = head_tile * kBlockM;

  if (threadIdx.x == 0) {
    device::prefetch_tensormap(&q_map);
    device::prefetch_tensormap(&kv_map);
    device::mbarrier_init(&smem.q_full, 1);
    device::mbarrier_init(&smem.q_empty, 2);  // one arrival per consumer warpgroup
    for (int s = 0; s < Cfg::kStages; ++s) {
      device::mbarrier_init(&smem.k_full[s], 1);
      device::mbarrier_init(&smem.k_empty[s], 2);
    }
    device::fence_barrier_init();
  }
  // Lengths, block table, schedule and q may come from the kernel before.
  device::grid_dependency_wait();
  __syncthreads();

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
      BlockCursor loader(range, p, split_begin);
      int32_t q_loads = 0;
      for (int32_t item = 0; loader.valid; ++item, loader.advance(p, split_begin)) {
        const int stage = item % Cfg::kStages;
        if (item >= Cfg::kStages) {
          device::mbarrier_wait_parity(&smem.k_empty[stage], ((item / Cfg::kStages) - 1) & 1);
        }
        if (loader.block == loader.piece.from) {
          if (q_loads > 0) device::mbarrier_wait_parity(&smem.q_empty, (q_loads - 1) & 1);
          ++q_loads;
          // Each box is heads_per_tile x tokens_per_tile rows of 128 bytes.
          device::mbarrier_arrive_expect_tx(&smem.q_full, kNumKTiles * 128 * p.heads_per_tile * p.tokens_per_tile);
          for (int t = 0; t < kNumKTiles; ++t) {
            device::tma_load_5d(reinterpret_cast<char*>(smem.q) + t * kTileBytes, &smem.q_full, &q_map, t * 64,
                                head0, kv_head, token0, loader.piece.req);
          }
        }
        const int32_t page = live_page(p, loader.piece.req, loader.block, loader.len);
        if (page >= 0) {
          device::mbarrier_arrive_expect_tx(&smem.k_full[stage], kNumKTiles * kTileBytes);
          char* dst = reinterpret_cast<char*>(smem.k) + stage * (kNumKTiles * kTileBytes);
          for (int t = 0; t < kNumKTiles; ++t) {
            device::tma_load_4d(dst + t * kTileBytes, &smem.k_full[stage], &kv_map, t * 64, kv_head, 0, page);
          }
        } else {
          device::mbarrier_arrive(&smem.k_full[stage]);  // nothing to load: complete the phase
        }
      }
    }
    device::grid_dependency_launch_dependents();
    return;
  }
  device::set_warpgroup_registers<device::launch_registers(Cfg::kThreads), Cfg::kConsumerRegisters>();

  const int tid = threadIdx.x - 128;  // 0..255 over the consumers
  const int wg = tid / 128;           // which half of the keys (QK) and of V's dims (PV)
  const int tid_wg = tid % 128;
  const int lane = tid % 32;

  Tensor sQ = make_tensor(make_smem_ptr(smem.q), typename Cfg::SmemLayoutQ{});    // (64, 576)
  Tensor sK = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutK{});    // (64, 576, stages)
  Tensor sVt = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutVt{});  // (512, 64, stages)
  Tensor sP = make_tensor(make_smem_ptr(smem.p), typename Cfg::SmemLayoutP{});    // (64, 64)

  typename Cfg::TiledMmaQK mma_qk;
  typename Cfg::TiledMmaPV mma_pv;
  auto thr_qk = mma_qk.get_thread_slice(tid_wg);
  auto thr_pv = mma_pv.get_thread_slice(tid_wg);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);                                                // (MMA, 1, 36)
  Tensor tOrP = thr_pv.partition_fragment_A(sP);                                                // (MMA, 1, 4)
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<Int<kBlockM>, Int<kHalfN>>{});               // 16 fp32
  Tensor tOrO = partition_fragment_C(mma_pv, Shape<Int<kBlockM>, Int<kHalfV>>{});               // 128 fp32
  static_assert(decltype(size(tSrS))::value == 16 && decltype(size(tOrO))::value == 128, "fragment sizes");

  // The two query rows this thread holds in every accumulator (registers
  // with (i / 2) % 2 == h hold row_in_tile[h]).
  int row_in_tile[2];
  int row_token[2];
  int row_head[2];  // query head, or -1 when the row is not a query of this tile
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int r = device::wgmma_accumulator_coord(tid_wg, 2 * h).row;
    row_in_tile[h] = r;
    const int token = token0 + r / p.heads_per_tile;
    const int head_in_group = head0 + r % p.heads_per_tile;
    const bool is_query = r < p.heads_per_tile * p.tokens_per_tile && token < p.s_q && head_in_group < p.group;
    row_token[h] = token;
    row_head[h] = is_query ? kv_head * p.group + head_in_group : -1;
  }

  int32_t item = 0;     // blocks consumed so far; its stage is item % kStages
  int32_t q_loads = 0;  // pieces with blocks consumed so far
  int32_t sums = 0;     // pieces finished so far (row_sum buffer parity)
  PieceCursor pieces(range);
  Piece piece;
  while (pieces.next(p, split_begin, piece)) {
    const int32_t len = request_length(p, piece.req);
    // Keys [0, limit) are visible to a row: causal bottom-right when s_q > 1.
    int32_t limit[2];
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) {
      limit[h] = p.causal ? len - (p.s_q - 1 - row_token[h]) : len;
    }
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
      if (live_page(p, piece.req, block, len) < 0) {
        // Every key of the block is masked: skip it whole. The barrier keeps
        // the warpgroups within one block of each other (row_max parity).
        device::named_barrier_sync(kBarRowMax, Cfg::kConsumerThreads);
        if (tid_wg == 0) device::mbarrier_arrive(&smem.k_empty[stage]);
        continue;
      }

      // S = Q K_half^T for keys [32 wg, 32 wg + 32) of the block.
      Tensor sKw = local_tile(sK(_, _, stage), Shape<Int<kHalfN>, Int<Cfg::kDimQK>>{}, make_coord(wg, _0{}));
      Tensor tSrK = thr_qk.partition_fragment_B(sKw);
      device::gemm_ss(mma_qk, tSrQ, tSrK, tSrS, /*zero_init=*/true);
      warpgroup_wait<0>();

      // Mask by selection (a masked logit may be NaN: never multiply it).
      float block_max[2] = {-INFINITY, -INFINITY};
      CUTE_UNROLL
      for (int i = 0; i < 16; ++i) {
        const int h = (i / 2) % 2;
        const int key = block * kBlockN + wg * kHalfN + device::wgmma_accumulator_coord(tid_wg, i).col;
        const float s = key < limit[h] ? tSrS(i) * p.scale_log2 : -INFINITY;
        tSrS(i) = s;
        block_max[h] = fmaxf(block_max[h], s);
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
        // A row with no visible key yet keeps max -inf: exponentiate against
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
      // Once a row's max settles (most blocks), its rescale is exactly 1:
      // skip the 128 multiplies when the whole warp can.
      if (__any_sync(0xffffffffu, rescale[0] != 1.f || rescale[1] != 1.f)) {
        CUTE_UNROLL
        for (int i = 0; i < 128; ++i) tOrO(i) *= rescale[(i / 2) % 2];
      }

      // The last block of a request: keys past its length may be NaN in the
      // cache; zero their V rows (this warpgroup's 256 dims) so 0 * NaN never
      // reaches O. Both QK of this block are done (kBarRowMax).
      const int32_t tail = len - block * kBlockN;
      if (tail < kBlockN) {
        char* k_stage = reinterpret_cast<char*>(smem.k) + stage * (kNumKTiles * kTileBytes);
        const int rows = kBlockN - tail;
        for (int idx = tid_wg; idx < rows * 32; idx += 128) {
          const int row = tail + idx / 32;
          const int tile = wg * 4 + (idx % 32) / 8;
          *reinterpret_cast<uint4*>(k_stage + tile * kTileBytes + row * 128 + (idx % 8) * 16) = make_uint4(0, 0, 0, 0);
        }
      }
      // P (rounded to the input dtype, as the spec says) for the other
      // warpgroup too: registers i, i + 1 are adjacent keys, one 4-byte store
      // into the 128-byte swizzled tile (the swizzle moves 16-byte chunks).
      CUTE_UNROLL
      for (int i = 0; i < 16; i += 2) {
        const device::FragmentCoord c = device::wgmma_accumulator_coord(tid_wg, i);
        Element pair[2] = {static_cast<Element>(tSrS(i)), static_cast<Element>(tSrS(i + 1))};
        const uint32_t offset = device::swizzle_128b(uint32_t(c.row * 128 + (wg * kHalfN + c.col) * 2));
        *reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(smem.p) + offset) = *reinterpret_cast<uint32_t*>(pair);
      }
      device::fence_proxy_async_shared_cta();  // the stores above are read by wgmma
      device::named_barrier_sync(kBarPReady, Cfg::kConsumerThreads);

      // O_half += P V_half.
      Tensor sVtw = local_tile(sVt(_, _, stage), Shape<Int<kHalfV>, Int<kBlockN>>{}, make_coord(wg, _0{}));
      Tensor tOrV = thr_pv.partition_fragment_B(sVtw);
      device::gemm_ss(mma_pv, tOrP, tOrV, tOrO, /*zero_init=*/false);
      warpgroup_wait<0>();
      if (tid_wg == 0) device::mbarrier_arrive(&smem.k_empty[stage]);  // this warpgroup is done with the stage
    }
    if (piece.to > piece.from && tid_wg == 0) device::mbarrier_arrive(&smem.q_empty);

    // Row sums: the quad's columns, then the other warpgroup's half.
    float total[2];
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) {
      float s = row_sum[h];
      s += __shfl_xor_sync(0xffffffffu, s, 1);
      s += __shfl_xor_sync(0xffffffffu, s, 2);
      if (lane % 4 == 0) smem.row_sum[sums & 1][wg][row_in_tile[h]] = s;
      total[h] = s;
    }
    device::named_barrier_sync(kBarRowSum, Cfg::kConsumerThreads);
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) total[h] += smem.row_sum[sums & 1][1 - wg][row_in_tile[h]];
    ++sums;

    // Epilogue: O / L, and lse = ln(L) + max (max in base 2, hence the ln 2).
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) {
      if (row_head[h] < 0) continue;  // h is a constant after unrolling: tOrO stays in registers
      // Only L == 0 is empty: a NaN L (a NaN key within the length) must stay NaN.
      const bool empty = total[h] == 0.f;
      const float inv = empty ? 0.f : 1.f / total[h];
      const float lse = empty ? -INFINITY : (row_max[h] + log2f(total[h])) * 0.6931471805599453f;
      const int token = row_token[h];
      const int head = row_head[h];
      const int col0 = wg * kHalfV + 2 * (lane % 4);
      if (!piece.split) {
        Element* out_row = static_cast<Element*>(p.out) + int64_t(piece.req) * p.stride_out_b +
                           int64_t(token) * p.stride_out_s + int64_t(head) * p.stride_out_h + col0;
        CUTE_UNROLL
        for (int j = 0; j < kHalfV / 8; ++j) {
          Element pair[2] = {static_cast<Element>(tOrO(4 * j + 2 * h) * inv),
                             static_cast<Element>(tOrO(4 * j + 2 * h + 1) * inv)};
          *reinterpret_cast<uint32_t*>(out_row + 8 * j) = *reinterpret_cast<uint32_t*>(pair);
        }
        if (wg == 0 && lane % 4 == 0) {
          p.lse[int64_t(piece.req) * p.stride_lse_b + int64_t(head) * p.stride_lse_h + token] = lse;
        }
      } else if (piece.slot >= 0) {
        const int64_t row = (int64_t(piece.slot) * p.s_q + token) * p.h_q + head;
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
  // Lets the combine kernel launch while this grid drains.
  device::grid_dependency_launch_dependents();
}

}  // namespace flashmla::kernels::dense_decode
