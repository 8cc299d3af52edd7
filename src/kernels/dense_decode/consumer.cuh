// The two consumer warpgroups of dense decode, split as in sparse decode:
// the score warpgroup computes S = Q K^T over all 64 keys of a block (whole
// rows per quad: no exchange of maxima or sums), the online softmax, zeroes
// the V rows past a request's length, and publishes P and each row's
// rescale factor; both then accumulate their half of the V dims. The
// previous split (both warpgroups m64n32 over half of the keys) read q from
// shared memory twice per block and exchanged row maxima every block.
#pragma once

#include <cstdint>

#include <cuda.h>

#include <cute/tensor.hpp>

#include "device/cluster.cuh"
#include "device/cute_gemm.cuh"
#include "device/fence.cuh"
#include "device/mbarrier.cuh"
#include "device/named_barrier.cuh"
#include "device/trace.cuh"
#include "device/tma.cuh"
#include "device/wgmma_layout.h"
#include "kernels/decode_output.cuh"
#include "kernels/dense_decode/config.cuh"
#include "kernels/dense_decode/params.h"
#include "kernels/dense_decode/schedule.cuh"
#include "kernels/pv_half.cuh"
#include "kernels/score_softmax.cuh"

namespace flashmla::kernels::dense_decode {

using namespace cute;

// Named barrier ids (0 is __syncthreads), each over both consumer warpgroups.
enum : uint32_t {
  kBarPFree = 1,       // the value warpgroup is done with P and the rescale factors of a block
  kBarPReady = 2,      // P, the factors and the zeroed V tail of the block are in shared memory
  kBarRowInv = 3,      // the output rows' 1 / L of a piece are published
  kBarScoreWarps = 4,  // the score warpgroup alone (its four warps' Q K^T are done)
};

// Loads the q tile of request `req` by TMA (one 5-D box per k-tile, each
// heads_per_tile x tokens_per_tile rows of 128 bytes), completing on q_full.
template <typename Cfg>
__device__ __forceinline__ void load_q(const CUtensorMap* q_map, const Params& p, typename Cfg::SharedStorage& smem,
                                       int32_t head0, int32_t kv_head, int32_t token0, int32_t req) {
  device::mbarrier_arrive_expect_tx(&smem.q_full, Cfg::kNumKTiles * 128 * p.heads_per_tile * p.tokens_per_tile);
  for (int t = 0; t < Cfg::kNumKTiles; ++t) {
    device::tma_load_5d(reinterpret_cast<char*>(smem.q) + t * Cfg::kTileBytes, &smem.q_full, q_map, t * 64, head0,
                        kv_head, token0, req);
  }
}

// The query rows thread t of a consumer warpgroup holds in every accumulator
// (registers with (i / 2) % 2 == h hold row h): their row in the tile, query
// token and head (-1 when the row is not a query of this tile).
struct TileRows {
  int in_tile[2];
  int token[2];
  int head[2];
};

__device__ __forceinline__ TileRows tile_rows(const Params& p, int tid_wg, int32_t head0, int32_t kv_head,
                                              int32_t token0) {
  TileRows rows;
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int r = device::wgmma_accumulator_coord(tid_wg, 2 * h).row;
    rows.in_tile[h] = r;
    const int token = token0 + r / p.heads_per_tile;
    const int head_in_group = head0 + r % p.heads_per_tile;
    const bool is_query = r < p.heads_per_tile * p.tokens_per_tile && token < p.s_q && head_in_group < p.group;
    rows.token[h] = token;
    rows.head[h] = is_query ? kv_head * p.group + head_in_group : -1;
  }
  return rows;
}

// A warpgroup's 256 output columns from col0 for its two rows: the input
// dtype into `out` (and lse) for an unsplit request, fp32 partials for the
// combine otherwise (a split piece without a slot stores nothing).
template <typename Cfg, typename Accumulator>
__device__ __forceinline__ void store_output_rows(const Params& p, const Piece& piece, const TileRows& rows,
                                                  const float (&inv)[2], const float (&lse)[2], bool with_lse,
                                                  int col0, const Accumulator& tOrO) {
  CUTE_UNROLL
  for (int h = 0; h < 2; ++h) {
    store_decode_row<typename Cfg::Element, Cfg::kHalfV, Cfg::kDimV, /*kQuadExchange=*/false>(
        p, piece, rows.head[h] >= 0, rows.token[h], rows.head[h], h, inv[h], lse[h], with_lse, col0, tOrO);
  }
}

// The score warpgroup (threads 128..255): it also loads q, the next piece's
// right after a piece's last Q K^T, so the producer never waits for q.
template <typename Cfg, bool kMulticast>
__device__ __forceinline__ void consume_scores(const CUtensorMap* q_map, const Params& p,
                                               typename Cfg::SharedStorage& smem, const WorkerRange& range,
                                               const int32_t* split_begin, int32_t head0, int32_t kv_head,
                                               int32_t token0) {
  using Element = typename Cfg::Element;
  constexpr int kBlockM = Cfg::kBlockM;
  constexpr int kBlockN = Cfg::kBlockN;
  constexpr int kNumKTiles = Cfg::kNumKTiles;
  constexpr int kTileBytes = Cfg::kTileBytes;
  const int tid_wg = threadIdx.x % 128;
  const int lane = threadIdx.x % 32;
  const TileRows rows = tile_rows(p, tid_wg, head0, kv_head, token0);

  Tensor sQ = make_tensor(make_smem_ptr(smem.q), typename Cfg::SmemLayoutQ{});
  Tensor sK = make_tensor(make_smem_ptr(smem.k), typename Cfg::SmemLayoutK{});
  typename Cfg::TiledMmaQK mma_qk;
  auto thr_qk = mma_qk.get_thread_slice(tid_wg);
  Tensor tSrQ = thr_qk.partition_fragment_A(sQ);                                   // (MMA, 1, 36)
  Tensor tSrS = partition_fragment_C(mma_qk, Shape<Int<kBlockM>, Int<kBlockN>>{});  // 32 fp32
  static_assert(decltype(size(tSrS))::value == 32, "fragment size");
  auto tOrO = make_output_accumulator<Cfg>();

  PieceCursor q_pieces(range);  // the pieces with blocks, in order: whose q comes next
  auto load_next_q = [&]() {
    Piece next;
    while (q_pieces.next(p, split_begin, next)) {
      if (next.to > next.from) {
        if (tid_wg == 0) load_q<Cfg>(q_map, p, smem, head0, kv_head, token0, next.req);
        return;
      }
    }
  };
  load_next_q();

  int32_t item = 0;      // blocks consumed so far; its stage is item % kStages
  int32_t computed = 0;  // blocks whose P was published (kBarPFree pairs)
  int32_t q_loads = 0;
  int32_t pieces_done = 0;
  PieceCursor pieces(range);
  Piece piece;
  while (pieces.next(p, split_begin, piece)) {
    const int32_t len = request_length(p, piece.req);
    // Keys [0, limit) are visible to a row: causal bottom-right when s_q > 1.
    int32_t limit[2];
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) limit[h] = p.causal ? len - (p.s_q - 1 - rows.token[h]) : len;
    float row_max[2] = {-INFINITY, -INFINITY};  // base 2
    float row_sum[2] = {0.f, 0.f};              // this thread's columns only
    clear(tOrO);

    if (piece.to > piece.from) {
      device::mbarrier_wait_parity(&smem.q_full, q_loads & 1);
      if (q_loads == 0 && tid_wg == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceFirstQ);
      ++q_loads;
    }
    for (int32_t block = piece.from; block < piece.to; ++block, ++item) {
      const int stage = item % Cfg::kStages;
      device::mbarrier_wait_parity(&smem.k_full[stage], (item / Cfg::kStages) & 1);
      if (item == 0 && tid_wg == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceFirstBlock);
      const bool last = block + 1 == piece.to;
      if (live_page(p, piece.req, block, len) < 0) {
        // Every key of the block is masked: skip it whole (the value
        // warpgroup decides the same from the same inputs).
        if (last) {
          device::named_barrier_sync(kBarScoreWarps, 128);
          load_next_q();
        }
        if (tid_wg == 0) device::mbarrier_arrive_here_and_peer<kMulticast>(&smem.k_empty[stage]);
        continue;
      }
      Tensor tSrK = thr_qk.partition_fragment_B(sK(_, _, stage));
      device::gemm_async(mma_qk, tSrQ, tSrK, tSrS, /*zero_init=*/true);
      warpgroup_wait<0>();
      if (last) {
        // The piece's q is read for the last time (every warp's part of the
        // wgmma is done): load the next piece's over it.
        device::named_barrier_sync(kBarScoreWarps, 128);
        load_next_q();
      }

      // Mask by selection (a masked logit may be NaN: never multiply it).
      // Only a request's last block or two reach past a row's limit; the
      // others skip the per-logit compare and select.
      float block_max[2] = {-INFINITY, -INFINITY};
      if ((block + 1) * kBlockN <= min(limit[0], limit[1])) {
        CUTE_UNROLL
        for (int i = 0; i < 32; ++i) block_max[(i / 2) % 2] = fmaxf(block_max[(i / 2) % 2], tSrS(i));
      } else {
        CUTE_UNROLL
        for (int i = 0; i < 32; ++i) {
          const int h = (i / 2) % 2;
          const int key = block * kBlockN + device::wgmma_accumulator_coord(tid_wg, i).col;
          const float s = key < limit[h] ? tSrS(i) : -INFINITY;
          tSrS(i) = s;
          block_max[h] = fmaxf(block_max[h], s);
        }
      }
      float rescale[2];
      online_softmax_step(tSrS, block_max, row_max, row_sum, rescale, p.scale_log2);
      // The last block of a request: keys past its length may be NaN in the
      // cache; zero their V rows (all 512 dims: both warpgroups' P V read
      // them) so 0 * NaN never reaches O. This warpgroup's Q K^T is done.
      const int32_t tail = len - block * kBlockN;
      if (tail < kBlockN) {
        char* k_stage = reinterpret_cast<char*>(smem.k) + stage * (kNumKTiles * kTileBytes);
        const int tail_rows = kBlockN - tail;
        for (int idx = tid_wg; idx < tail_rows * 64; idx += 128) {
          const int row = tail + idx / 64;
          const int tile = (idx % 64) / 8;  // V tiles 0..7
          *reinterpret_cast<uint4*>(k_stage + tile * kTileBytes + row * 128 + (idx % 8) * 16) = make_uint4(0, 0, 0, 0);
        }
        // This warpgroup's P V reads the zeroed rows before P is published.
        device::fence_proxy_async_shared_cta();
        device::named_barrier_sync(kBarScoreWarps, 128);
      }
      rescale_output(tOrO, rescale);
      // This warpgroup's P V takes P from its registers, so it goes to the
      // tensor pipe before P is stored for the value warpgroup.
      const auto tOrP = make_p_operand<Cfg>(tSrS, tid_wg);
      issue_pv_from_registers<Cfg>(tOrP, smem.k, stage, /*half=*/0, tid_wg, tOrO);
      // The value warpgroup is done with the previous block's P and factors.
      if (computed > 0) device::named_barrier_sync(kBarPFree, Cfg::kConsumerThreads);
      ++computed;
      store_p_tile<Element>(reinterpret_cast<char*>(smem.p), tSrS, tid_wg);
      if (lane % 4 == 0) {
        smem.p_rescale[rows.in_tile[0]] = rescale[0];
        smem.p_rescale[rows.in_tile[1]] = rescale[1];
      }
      device::fence_proxy_async_shared_cta();  // P is read by wgmma (the zeroed V rows were fenced above)
      device::named_barrier_arrive(kBarPReady, Cfg::kConsumerThreads);
      warpgroup_wait<0>();
      warpgroup_fence_operand(tOrO);
      if (tid_wg == 0) device::mbarrier_arrive_here_and_peer<kMulticast>(&smem.k_empty[stage]);
    }

    if (pieces_done == 0 && tid_wg == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceFirstBlocksDone);
    // Epilogue: O / L, and lse = ln(L) + max (max in base 2, hence the ln 2).
    float inv[2];
    float lse[2];
    CUTE_UNROLL
    for (int h = 0; h < 2; ++h) {
      float total = row_sum[h];
      total += __shfl_xor_sync(0xffffffffu, total, 1);
      total += __shfl_xor_sync(0xffffffffu, total, 2);
      // Only L == 0 is empty: a NaN L (a NaN key within the length) must stay NaN.
      const bool empty = total == 0.f;
      inv[h] = empty ? 0.f : 1.f / total;
      lse[h] = empty ? -INFINITY : (row_max[h] + log2f(total)) * 0.6931471805599453f;
      if (lane % 4 == 0) smem.row_inv[pieces_done & 1][rows.in_tile[h]] = inv[h];
    }
    // Both warpgroups wait here (an arrive could run two pieces ahead when
    // pieces have no blocks, and complete the barrier alone).
    device::named_barrier_sync(kBarRowInv, Cfg::kConsumerThreads);
    ++pieces_done;
    store_output_rows<Cfg>(p, piece, rows, inv, lse, /*with_lse=*/true, 2 * (lane % 4), tOrO);
    if (pieces_done == 1 && tid_wg == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceFirstStoredScores);
  }
  // Take the value warpgroup's release of the last computed block.
  if (computed > 0) device::named_barrier_sync(kBarPFree, Cfg::kConsumerThreads);
}

// The value warpgroup (threads 256..383): O's V dims [256, 512), rescaled
// and accumulated once the score warpgroup has published a block's P.
template <typename Cfg, bool kMulticast>
__device__ __forceinline__ void consume_values(const Params& p, typename Cfg::SharedStorage& smem,
                                               const WorkerRange& range, const int32_t* split_begin, int32_t head0,
                                               int32_t kv_head, int32_t token0) {
  const int tid_wg = threadIdx.x % 128;
  const int lane = threadIdx.x % 32;
  const TileRows rows = tile_rows(p, tid_wg, head0, kv_head, token0);
  auto tOrO = make_output_accumulator<Cfg>();

  int32_t item = 0;
  int32_t pieces_done = 0;
  PieceCursor pieces(range);
  Piece piece;
  while (pieces.next(p, split_begin, piece)) {
    const int32_t len = request_length(p, piece.req);
    clear(tOrO);
    for (int32_t block = piece.from; block < piece.to; ++block, ++item) {
      const int stage = item % Cfg::kStages;
      device::mbarrier_wait_parity(&smem.k_full[stage], (item / Cfg::kStages) & 1);
      if (live_page(p, piece.req, block, len) >= 0) {
        device::named_barrier_sync(kBarPReady, Cfg::kConsumerThreads);
        const float rescale[2] = {smem.p_rescale[rows.in_tile[0]], smem.p_rescale[rows.in_tile[1]]};
        rescale_output(tOrO, rescale);
        accumulate_pv<Cfg>(smem.p, smem.k, stage, /*half=*/1, tid_wg, tOrO);
        device::named_barrier_arrive(kBarPFree, Cfg::kConsumerThreads);
      }
      if (tid_wg == 0) device::mbarrier_arrive_here_and_peer<kMulticast>(&smem.k_empty[stage]);
    }
    device::named_barrier_sync(kBarRowInv, Cfg::kConsumerThreads);
    const float inv[2] = {smem.row_inv[pieces_done & 1][rows.in_tile[0]],
                          smem.row_inv[pieces_done & 1][rows.in_tile[1]]};
    ++pieces_done;
    const float lse[2] = {0.f, 0.f};  // the score warpgroup stores lse
    store_output_rows<Cfg>(p, piece, rows, inv, lse, /*with_lse=*/false, Cfg::kHalfV + 2 * (lane % 4), tOrO);
    if (pieces_done == 1 && tid_wg == 0) FLASHMLA_TRACE_STAMP(p.trace, device::kTraceFirstStoredValues);
  }
}

}  // namespace flashmla::kernels::dense_decode
